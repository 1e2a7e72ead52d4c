"""Sync by USB stick: export what the centre lacks, read back what it acknowledged.

Export writes one sync bundle of every unacknowledged record (staged on the
stick, then renamed; see appliance.syncbundle). The centre's ``chalkbox train
ingest`` puts a signed acknowledgement file and its newest model bundles on the
stick; back at the box, :func:`import_from_stick` applies the acknowledgements
(records become eligible for compaction) and lists the bundles to offer.
Records exported but never acknowledged are simply exported again next time.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from ..bundle import TASKS, verify_bundle
from ..config import BoxConfig
from ..errors import ApplianceError, FormatError, StoreError
from ..store import Outbox
from ..syncbundle import encode_records, write_encoded_bundle
from .outgoing import next_outgoing
from .protocol import MODELS_DIR_ON_STICK, ack_file_name, read_ack_file


def list_sticks(mount_root: Path) -> list[Path]:
    """Mounted drives under ``mount_root``: its subdirectories, or (Debian's
    /media/<user>/<label> layout) the mount points one level further down."""
    root = Path(mount_root)
    if not root.is_dir():
        return []
    sticks = []
    for entry in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        nested = [p for p in sorted(entry.iterdir()) if p.is_dir() and os.path.ismount(p)] \
            if not os.path.ismount(entry) and os.access(entry, os.R_OK | os.X_OK) else []
        sticks.extend(nested or [entry])
    return sticks


@dataclasses.dataclass
class ExportResult:
    path: Path | None
    count: int


def export_to_stick(outbox: Outbox, config: BoxConfig, stick: Path) -> ExportResult:
    """Write every unacknowledged record to ``stick`` as one bundle (atomic on the stick)."""
    stick = Path(stick)
    if not stick.is_dir():
        raise StoreError(f"{stick} is not a directory", hint="plug in the stick, or create the dir")
    batch = next_outgoing(outbox, config)
    if batch is None:
        return ExportResult(None, 0)
    records = batch.records
    if not records:  # only opted-out students' records: nothing may leave
        outbox.acknowledge(batch.first_position, batch.last_position)
        return ExportResult(None, 0)
    ordered, data = encode_records(records)
    needed = len(data) + 64 * 1024
    free = shutil.disk_usage(stick).free
    if free < needed:
        raise StoreError(f"the stick at {stick} has {free // 1024} KiB free; the export needs "
                         f"{needed // 1024} KiB", hint="free space on the stick or use another one")
    try:
        path = write_encoded_bundle(ordered, data, stick, box_id=config.box_id,
                                    school_id=config.school_id,
                                    outbox_range=(batch.first_position, batch.last_position))
    except OSError as exc:
        raise StoreError(f"could not write the sync bundle to {stick}: {exc.strerror or exc}",
                         hint="check the stick (space, write protection) and try again")
    return ExportResult(path, len(records))


@dataclasses.dataclass
class ImportResult:
    acks_applied: int = 0
    acks_refused: str | None = None
    models: list[Path] = dataclasses.field(default_factory=list)


def import_from_stick(outbox: Outbox, config: BoxConfig, stick: Path) -> ImportResult:
    """Apply the centre's signed acknowledgements on ``stick``; list model bundles it carries
    that verify with the fleet key (to offer for install)."""
    result = ImportResult()
    ack_path = Path(stick) / ack_file_name(config.box_id)
    if ack_path.is_file():
        try:
            acks = read_ack_file(ack_path, config.public_key_path)
        except FormatError as exc:
            result.acks_refused = exc.message
        else:
            for ack in sorted(acks, key=lambda a: a.outbox_from or 0):
                if ack.outbox_from is not None and outbox.acknowledge(ack.outbox_from,
                                                                      ack.outbox_to):
                    result.acks_applied += 1
    for task in TASKS:
        task_dir = Path(stick) / MODELS_DIR_ON_STICK / config.school_id / task
        for bundle in sorted(p for p in task_dir.glob("*") if p.is_dir()) if task_dir.is_dir() else []:
            try:
                verify_bundle(bundle, config.public_key_path)
            except ApplianceError:
                continue  # not for this fleet, or damaged: never offered
            result.models.append(bundle)
    return result
