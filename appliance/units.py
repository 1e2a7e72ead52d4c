"""systemd units for the box, rendered from the templates in the repository's systemd/.

Provisioning writes them under ``--root`` (``/`` on a real box, a temp dir in
tests), with the paths of this installation filled in.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .config import BoxConfig
from .errors import ConfigError
from .fsutil import atomic_write_text

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNITS = ("chalkbox-web.service", "chalkbox-worker.service", "chalkbox-firstboot.service")
SYSUSERS = "chalkbox.sysusers"
PROVISION_FILE = "/etc/chalkbox/provision.toml"


def chalkbox_executable() -> Path:
    """The `chalkbox` command of this installation (beside this Python, else on PATH)."""
    beside = Path(sys.executable).parent / "chalkbox"
    found = beside if beside.exists() else shutil.which("chalkbox")
    if not found:
        raise ConfigError("cannot find the chalkbox command to put in the systemd units",
                          hint="install Chalkbox (pip install '.[box]') before provisioning")
    return Path(found).absolute()


def render(template: str, config: BoxConfig) -> str:
    values = {"@DATA_DIR@": str(config.data_dir), "@CHALKBOX@": str(chalkbox_executable()),
              "@USB_MOUNT_ROOT@": config.usb_mount_root, "@PROVISION_FILE@": PROVISION_FILE}
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def install_units(config: BoxConfig, root: Path) -> list[Path]:
    """Write the units and the sysusers file under ``root``; returns what was written."""
    if not TEMPLATE_DIR.is_dir():
        raise ConfigError(f"the unit templates are missing ({TEMPLATE_DIR})",
                          hint="provision from a full Chalkbox checkout or package")
    unit_dir = Path(root) / "etc" / "systemd" / "system"
    sysusers_dir = Path(root) / "usr" / "lib" / "sysusers.d"
    written = []
    for name, dest_dir, dest_name in [*((u, unit_dir, u) for u in UNITS),
                                      (SYSUSERS, sysusers_dir, "chalkbox.conf")]:
        dest_dir.mkdir(parents=True, exist_ok=True)
        text = render((TEMPLATE_DIR / name).read_text(), config)
        atomic_write_text(dest_dir / dest_name, text)
        written.append(dest_dir / dest_name)
    return written


def activate_on_this_machine(config: BoxConfig) -> list[str]:
    """On a real box (``--root /``, as root): create the service user from the sysusers
    file and give it the data dir. Returns what the technician should run next."""
    import os
    import subprocess

    if os.geteuid() != 0:
        raise ConfigError("installing the units into / needs root",
                          hint="run provisioning with sudo, or use --root DIR to stage them")
    sysusers = Path("/usr/lib/sysusers.d/chalkbox.conf")
    if shutil.which("systemd-sysusers"):
        subprocess.run(["systemd-sysusers", str(sysusers)], check=True)
    for directory, _dirs, files in os.walk(config.data_dir):
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            shutil.chown(path, "chalkbox", "chalkbox")
    return ["systemctl daemon-reload",
            "systemctl enable --now chalkbox-web.service chalkbox-worker.service"]
