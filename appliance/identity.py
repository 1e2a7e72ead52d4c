"""The box's identity, and what happens when a disk image is cloned.

Provisioning records the machine's ``/etc/machine-id`` beside the box id. A box
that starts on another machine (a cloned image) or after ``chalkbox box
deprovision`` makes itself a new box id and forgets the old box's centre token,
so two classrooms never sync as one box.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from .config import BoxConfig, load_config, to_toml
from .errors import ConfigError
from .fsutil import atomic_write_text

IDENTITY_FILE = "identity.json"
UNPROVISIONED = "unprovisioned"


def new_box_id() -> str:
    import secrets

    return "box-" + secrets.token_hex(4)


def system_root() -> Path:
    """The root the box runs in: ``/``, or CHALKBOX_ROOT (tests run a box "inside" a
    provisioning --root)."""
    return Path(os.environ.get("CHALKBOX_ROOT", "/"))


def machine_id(root: Path) -> str:
    try:
        return (Path(root) / "etc" / "machine-id").read_text().strip()
    except OSError:
        return ""


def write_identity(config: BoxConfig, root: Path) -> None:
    atomic_write_text(config.data_dir / IDENTITY_FILE, json.dumps(
        {"box_id": config.box_id, "machine_id": machine_id(root), "at": time.time()}))


def _set_box_id(config: BoxConfig, box_id: str) -> BoxConfig:
    settings = {**config.settings(), "box_id": box_id}
    atomic_write_text(config.config_path, to_toml(settings))
    return load_config(config.data_dir)


def ensure_identity(config: BoxConfig, root: Path | None = None) -> tuple[BoxConfig, bool]:
    """(config, renewed): renew the box id when this data dir was cloned or deprovisioned."""
    lock_path = config.data_dir / ".identity.lock"
    with open(lock_path, "a+") as lock:  # web and worker may start together
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = load_config(config.data_dir)
        try:
            recorded = json.loads((config.data_dir / IDENTITY_FILE).read_text())
        except (OSError, ValueError):
            recorded = None
        root = root or system_root()
        here = machine_id(root)
        same = (recorded is not None and recorded.get("box_id") == config.box_id
                and recorded.get("machine_id") == here and config.box_id != UNPROVISIONED)
        if same:
            return config, False
        config = _set_box_id(config, new_box_id())
        config.token_path.unlink(missing_ok=True)  # the centre knows the old box by that token
        write_identity(config, root)
        return config, True


def deprovision(config: BoxConfig, force: bool = False) -> list[str]:
    """Prepare this data dir to be imaged: forget the identity and the box's own data.

    Keeps the models, content, configuration, fleet key and school secret (shared by
    the school's boxes). Refuses while records await the centre, unless ``force``.
    """
    from .store import open_outbox

    count, _ = open_outbox(config).unsynced()
    if count and not force:
        raise ConfigError(f"{count} records have not reached the centre yet",
                          hint="sync first (chalkbox box sync usb|now), or pass --force to "
                               "discard them")
    removed = []
    for name in ("outbox", "sync", "worker", "roster.json", IDENTITY_FILE):
        path = config.data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    if config.token_path.exists():
        config.token_path.unlink()
        removed.append(str(config.token_path.relative_to(config.data_dir)))
    _set_box_id(config, UNPROVISIONED)
    os.sync()
    return removed
