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
import json
import os
import shutil
from pathlib import Path

from ..bundle import TASKS, verify_bundle
from ..config import BoxConfig
from ..errors import ApplianceError, FormatError, StoreError
from ..store import Outbox
from ..fsutil import atomic_write_text
from ..syncbundle import encode_records, read_manifest, write_encoded_bundle
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


BUNDLE_RECORDS = 50_000      # bounded bundles: the centre reads each whole, in memory
JOURNAL_FILE = "usb-exports.json"
JOURNAL_KEEP = 200


@dataclasses.dataclass
class ExportResult:
    path: Path | None          # the last bundle written
    count: int
    paths: list[Path] = dataclasses.field(default_factory=list)


def _journal(config: BoxConfig) -> list[dict]:
    try:
        return json.loads((config.sync_dir / JOURNAL_FILE).read_text())
    except (OSError, ValueError):
        return []


def _remember_export(config: BoxConfig, manifest: dict) -> None:
    """What the box exported, by its own account: acks are matched against this, so a
    range edited on the stick can never mark records the box did not send."""
    entry = {k: manifest[k] for k in ("first_id", "last_id", "count", "outbox_from", "outbox_to")}
    journal = [e for e in _journal(config) if e != entry][-(JOURNAL_KEEP - 1):] + [entry]
    config.sync_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config.sync_dir / JOURNAL_FILE, json.dumps(journal))


def export_to_stick(outbox: Outbox, config: BoxConfig, stick: Path) -> ExportResult:
    """Write every unacknowledged record to ``stick``, in bundles of at most BUNDLE_RECORDS
    (each staged and renamed: a pulled stick leaves whole bundles or hidden staging dirs)."""
    stick = Path(stick)
    if not stick.is_dir():
        raise StoreError(f"{stick} is not a directory", hint="plug in the stick, or create the dir")
    result, after, range_start = ExportResult(None, 0), None, None
    while (batch := next_outgoing(outbox, config, BUNDLE_RECORDS, after)) is not None:
        after = batch.last_position
        range_start = batch.first_position if range_start is None else range_start
        if not batch.records:  # only opted-out students: their range joins the next bundle
            continue
        ordered, data = encode_records(batch.records)
        needed = len(data) + 64 * 1024
        free = shutil.disk_usage(stick).free
        if free < needed:
            raise StoreError(f"the stick at {stick} has {free // 1024} KiB free; the export needs "
                             f"{needed // 1024} KiB more",
                             hint="free space on the stick or use another one")
        try:
            path = write_encoded_bundle(ordered, data, stick, box_id=config.box_id,
                                        school_id=config.school_id,
                                        outbox_range=(range_start, batch.last_position))
        except OSError as exc:
            raise StoreError(f"could not write the sync bundle to {stick}: {exc.strerror or exc}",
                             hint="check the stick (space, write protection) and try again")
        _remember_export(config, read_manifest(path))
        result.paths.append(path)
        result.path, result.count, range_start = path, result.count + len(ordered), None
    if range_start is not None:  # trailing opted-out records: nothing to send, settle them
        outbox.acknowledge(range_start, after)
    return result


@dataclasses.dataclass
class ImportResult:
    acks_applied: int = 0
    acks_refused: str | None = None
    acks_unknown: int = 0
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
            exported = {(e["first_id"], e["last_id"], e["count"]): e for e in _journal(config)}
            ours = [exported[(a.first_id, a.last_id, a.count)] for a in acks
                    if (a.first_id, a.last_id, a.count) in exported]
            result.acks_unknown = len(acks) - len(ours)  # not exported here: ignored
            for entry in sorted(ours, key=lambda e: e["outbox_from"]):
                if outbox.acknowledge(entry["outbox_from"], entry["outbox_to"]):
                    result.acks_applied += 1
    for task in TASKS:
        task_dir = Path(stick) / MODELS_DIR_ON_STICK / config.school_id / task
        verified = []
        for bundle in sorted(p for p in task_dir.glob("*") if p.is_dir()) if task_dir.is_dir() else []:
            try:
                manifest = verify_bundle(bundle, config.public_key_path)
            except ApplianceError:
                continue  # not for this fleet, or damaged: never offered
            verified.append((manifest.created_at or "", bundle))
        if verified:  # the newest the centre signed, whatever the directory names
            result.models.append(max(verified)[1])
    return result
