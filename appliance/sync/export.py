"""Export the outbox as a sync bundle into a directory (a USB stick or a staging dir)."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..config import BoxConfig
from ..errors import StoreError
from ..store import Outbox
from ..syncbundle import write_sync_bundle


def export_to(config: BoxConfig, dest: Path) -> tuple[Path | None, int]:
    """Write every stored record as one bundle under ``dest``; returns (path, count).

    Until the centre acknowledges (the sync issue), every export carries every
    record; the centre deduplicates by record id, so re-exporting is harmless.
    """
    dest = Path(dest)
    if not dest.is_dir():
        raise StoreError(f"{dest} is not a directory", hint="plug in the stick, or create the directory")
    records = list(Outbox(config.outbox_dir, config.segment_records).records())
    try:
        path = write_sync_bundle(records, dest, box_id=config.box_id, school_id=config.school_id)
    except OSError as exc:
        free = shutil.disk_usage(dest).free
        raise StoreError(f"could not write the sync bundle to {dest}: {exc.strerror or exc} "
                         f"({free // 1024} KiB free)", hint="use a stick with more free space")
    return path, len(records)
