"""The box's background worker: huey tasks on an embedded SQLite queue.

huey delivers at most once (a task killed mid-run is gone), so no task carries
state in its arguments: each derives its work from the store (what is
unacknowledged, what the session file says) and can run again at any time.
Periodic tasks keep trying: a kill -9 of the worker loses nothing but time.

The consumer is started by ``chalkbox box worker`` with CHALKBOX_DATA_DIR set;
producers (the web app, the CLI) enqueue into the same ``worker/huey.db``.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from huey import crontab

from .config import load_config
from .errors import ApplianceError
from .fsutil import atomic_write_text
from .queue import make_huey
from .store import open_outbox

log = logging.getLogger("chalkbox.worker")

HEARTBEAT_FILE = "heartbeat"


def _data_dir() -> Path:
    return Path(os.environ.get("CHALKBOX_DATA_DIR", "/var/lib/chalkbox"))


huey = make_huey(_data_dir())


def _parts():
    config = load_config(_data_dir())
    return config, open_outbox(config)


@huey.periodic_task(crontab(minute="*"))
def heartbeat() -> float:
    """Proof of life for `chalkbox box doctor`: the worker is running and consuming."""
    config = load_config(_data_dir())
    now = time.time()
    atomic_write_text(config.worker_dir / HEARTBEAT_FILE, f"{now}\n")
    return now


@huey.on_startup()
def _started() -> None:
    heartbeat.call_local()


@huey.periodic_task(crontab(minute="*"))
def sync_tick() -> str:
    """Network sync when one is configured and due (the session applies the backoff)."""
    from .sync.session import run_sync

    config, outbox = _parts()
    if not config.central_url:
        return "usb-only"
    try:
        return run_sync(config, outbox, health=_health(config)).stage
    except ApplianceError as exc:
        log.warning("sync failed: %s", exc.message)
        return f"failed: {exc.message}"


@huey.task()
def sync_now() -> dict:
    from .sync.session import run_sync

    config, outbox = _parts()
    state = run_sync(config, outbox, health=_health(config), force=True)
    return {"stage": state.stage, "counters": state.counters}


def _health(config):
    from .doctor import health_summary

    return lambda: health_summary(config)


@huey.task()
def usb_sync(stick: str, install_models: bool = False) -> dict:
    """The teacher's "sync to stick": apply acknowledgements, maybe install, export."""
    from .models import install_bundle
    from .sync.usb import export_to_stick, import_from_stick

    config, outbox = _parts()
    imported = import_from_stick(outbox, config, Path(stick))
    exported = export_to_stick(outbox, config, Path(stick))  # records first, whatever follows
    installed = []
    if install_models:
        for bundle in imported.models:
            installed.append(install_bundle(config.models_dir, bundle,
                                            config.public_key_path).name)
    return {"acks_applied": imported.acks_applied, "acks_refused": imported.acks_refused,
            "models_offered": [str(p) for p in imported.models], "installed": installed,
            "exported": exported.count, "bundle": str(exported.path) if exported.path else None}


@huey.task()
def install_model(bundle: str) -> str:
    from .models import install_bundle

    config = load_config(_data_dir())
    return install_bundle(config.models_dir, Path(bundle), config.public_key_path).name


@huey.periodic_task(crontab(minute="17", hour="3"))
def compact() -> int:
    """Delete segments the centre has had for keep_synced_days (never anything else)."""
    config, outbox = _parts()
    removed = outbox.compact(config.keep_synced_days * 86400)
    if removed:
        log.info("compaction removed %d synced segment(s)", len(removed))
    return len(removed)
