"""mDNS (zeroconf): tablets open http://chalkbox.local/, not an IP address.

The gunicorn master advertises the box once it listens (gunicorn.conf.py's
``when_ready``) and withdraws it on exit. The service is ``_http._tcp`` named
"Chalkbox <box id>", on host ``<mdns_name>.local``; with several boxes on one
network, give each its own ``mdns_name`` in box.toml.
"""
from __future__ import annotations

import logging
import socket

from .config import BoxConfig

log = logging.getLogger(__name__)

SERVICE_TYPE = "_http._tcp.local."


def addresses_for(host: str) -> list[str]:
    """The IPv4 addresses to announce: the bound one, or every non-loopback one."""
    if host not in ("0.0.0.0", "", "::"):
        return [host]
    import ifaddr  # a zeroconf dependency

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if isinstance(ip.ip, str) and not ip.ip.startswith("127.")]
    return found or ["127.0.0.1"]


class Advertiser:
    def __init__(self, config: BoxConfig):
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        self.addresses = addresses_for(config.host)
        self.name = f"Chalkbox {config.box_id}.{SERVICE_TYPE}"
        self.info = ServiceInfo(
            SERVICE_TYPE, self.name, port=config.port, server=f"{config.mdns_name}.local.",
            addresses=[socket.inet_aton(a) for a in self.addresses],
            properties={"path": "/", "box": config.box_id, "school": config.school_id})
        self.zeroconf = Zeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
        self.zeroconf.register_service(self.info, allow_name_change=True)
        log.info("advertised %s at %s.local (%s)", self.name, config.mdns_name,
                 ", ".join(self.addresses))

    def close(self) -> None:
        try:
            self.zeroconf.unregister_service(self.info)
        finally:
            self.zeroconf.close()


def advertise(config: BoxConfig) -> Advertiser | None:
    """Start advertising unless disabled (mdns_name = ""); never stops the box from serving."""
    if not config.mdns_name:
        return None
    try:
        return Advertiser(config)
    except Exception as exc:  # no multicast on this network: the box still serves by IP
        log.warning("mDNS advertising failed (%s: %s); tablets must use the IP address",
                    type(exc).__name__, exc)
        return None
