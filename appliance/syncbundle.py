"""The sync bundle: how records leave the box (network upload or USB stick).

A bundle is a directory ``chalkbox-sync-<box>-<first id>/`` holding
``records.jsonl`` (one InteractionRecord per line, in id order) and
``manifest.json`` (box, id range, count, sha256 of each file). It is written in
a hidden staging directory and renamed into place, so a pulled stick leaves
either a whole bundle or a staging directory that readers ignore.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import validate as v
from .errors import FormatError
from .fsutil import publish_dir, read_bounded
from .records import InteractionRecord, utc_now

FORMAT = "chalkbox-sync"
FORMAT_VERSION = 1
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "manifest.json"
STAGING_PREFIX = ".staging-"
MAX_LINE_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 64 * 1024


def bundle_name(box_id: str, first_id: str) -> str:
    return f"chalkbox-sync-{box_id}-{first_id}"


def encode_records(records: Iterable[InteractionRecord]) -> tuple[list[InteractionRecord], bytes]:
    """Records sorted by id, and their JSON-lines bytes (what the manifest's sha256 covers)."""
    ordered = sorted(records, key=lambda r: r.id)
    lines = (json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for r in ordered)
    return ordered, "".join(lines).encode("utf-8")


def build_manifest(ordered: list[InteractionRecord], data: bytes, *, box_id: str, school_id: str,
                   outbox_range: tuple[int, int] | None = None) -> dict[str, Any]:
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "box_id": box_id,
        "school_id": school_id,
        "created_at": utc_now(),
        "first_id": ordered[0].id,
        "last_id": ordered[-1].id,
        "count": len(ordered),
        "files": {RECORDS_FILE: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}},
    }
    if outbox_range is not None:
        manifest["outbox_from"], manifest["outbox_to"] = outbox_range
    return manifest


def write_sync_bundle(records: Iterable[InteractionRecord], dest_parent: Path, *, box_id: str,
                      school_id: str, outbox_range: tuple[int, int] | None = None) -> Path | None:
    """Write ``records`` as one bundle under ``dest_parent``; None when there is nothing to write."""
    return write_encoded_bundle(*encode_records(records), dest_parent, box_id=box_id,
                                school_id=school_id, outbox_range=outbox_range)


def write_encoded_bundle(ordered: list[InteractionRecord], data: bytes, dest_parent: Path, *,
                         box_id: str, school_id: str,
                         outbox_range: tuple[int, int] | None = None) -> Path | None:
    """As write_sync_bundle, for records already encoded by :func:`encode_records`."""
    if not ordered:
        return None
    dest_parent = Path(dest_parent)
    final = dest_parent / bundle_name(box_id, ordered[0].id)
    staging = dest_parent / (STAGING_PREFIX + final.name)
    shutil.rmtree(staging, ignore_errors=True)  # a stick pulled during an earlier export
    staging.mkdir(parents=True)
    (staging / RECORDS_FILE).write_bytes(data)
    manifest = build_manifest(ordered, data, box_id=box_id, school_id=school_id,
                              outbox_range=outbox_range)
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    publish_dir(staging, final)
    return final


def parse_manifest(data: Any) -> dict[str, Any]:
    """Validate a sync manifest (from a file or a network push)."""
    data = dict(v.require_mapping(data, "manifest"))
    v.format_header(data, FORMAT, FORMAT_VERSION, "upgrade Chalkbox at the centre")
    for name in ("box_id", "school_id"):
        v.plain_id(data, name)
    for name in ("first_id", "last_id"):
        v.text(data, name, max_len=64)
    v.integer(data, "count", minimum=1)
    start = v.integer(data, "outbox_from", minimum=0, required=False)
    end = v.integer(data, "outbox_to", minimum=0, required=False)
    if (start is None) != (end is None) or (start is not None and start > end):
        raise FormatError("'outbox_from' and 'outbox_to' must come together, from <= to",
                          field="outbox_from")
    data["files"] = v.file_table(data, [RECORDS_FILE])
    return data


def read_manifest(bundle: Path) -> dict[str, Any]:
    path = Path(bundle) / MANIFEST_FILE
    if not path.is_file():
        raise FormatError(f"{bundle} has no {MANIFEST_FILE}; it is not a sync bundle (or is partial)",
                          field=MANIFEST_FILE, hint="export the bundle again from the box")
    try:
        data = json.loads(read_bounded(path, MAX_MANIFEST_BYTES))
    except (ValueError, RecursionError) as exc:  # also: too big, a symlink, not UTF-8
        raise FormatError(f"{path} is not a valid manifest: {exc}", field=MANIFEST_FILE)
    return parse_manifest(data)


def decode_records(manifest: dict[str, Any], data: bytes) -> list[InteractionRecord]:
    """Check ``data`` against a parsed manifest and parse every record: all or nothing."""
    return [record for record, _ in decode_lines(manifest, data)]


def decode_lines(manifest: dict[str, Any], data: bytes) -> list[tuple[InteractionRecord, str]]:
    """As decode_records, with each record's JSON line (checksummed, validated) beside it."""
    entry = manifest["files"][RECORDS_FILE]
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise FormatError(f"{RECORDS_FILE} does not match its sha256 in the manifest: the bundle "
                          "is incomplete, damaged or was tampered with",
                          field=f"files.{RECORDS_FILE}.sha256",
                          hint="export the bundle again from the box")
    pairs = list(_parse_lines(data))
    records = [record for record, _ in pairs]
    if len(records) != manifest["count"]:
        raise FormatError(f"manifest says {manifest['count']} records, file holds {len(records)}",
                          field="count")
    if records[0].id != manifest["first_id"] or records[-1].id != manifest["last_id"]:
        raise FormatError("records do not match the manifest's id range", field="first_id")
    if any(r.box_id != manifest["box_id"] for r in records):
        raise FormatError("a record's box_id differs from the manifest's", field="box_id")
    if any(r.school_id != manifest["school_id"] for r in records):
        raise FormatError("a record's school_id differs from the manifest's", field="school_id")
    return pairs


def read_sync_bundle(bundle: Path) -> tuple[dict[str, Any], list[InteractionRecord]]:
    """Verify, then parse every record; all or nothing (never half a bundle)."""
    manifest, pairs = read_sync_bundle_lines(bundle)
    return manifest, [record for record, _ in pairs]


def read_sync_bundle_lines(bundle: Path) -> tuple[dict[str, Any], list[tuple[InteractionRecord, str]]]:
    """As read_sync_bundle, keeping each record's validated JSON line (for storing as is)."""
    manifest = read_manifest(bundle)
    path = Path(bundle) / RECORDS_FILE
    if not path.is_file():
        raise FormatError(f"{RECORDS_FILE} is missing from {bundle}",
                          field=f"files.{RECORDS_FILE}.sha256", hint="export the bundle again")
    if path.is_symlink() or path.stat().st_size > MAX_BUNDLE_BYTES:
        raise FormatError(f"{path} is over {MAX_BUNDLE_BYTES >> 20} MiB", field=RECORDS_FILE)
    return manifest, decode_lines(manifest, path.read_bytes())


def _parse_lines(data: bytes) -> Iterator[tuple[InteractionRecord, str]]:
    for number, line in enumerate(data.splitlines(), 1):
        if len(line) > MAX_LINE_BYTES:
            raise FormatError(f"{RECORDS_FILE} line {number} is over {MAX_LINE_BYTES} bytes",
                              field=RECORDS_FILE)
        try:
            text = line.decode("utf-8")
            yield InteractionRecord.from_dict(json.loads(text)), text
        except FormatError as exc:
            raise FormatError(f"{RECORDS_FILE} line {number}: {exc.message}", field=exc.field)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise FormatError(f"{RECORDS_FILE} line {number} is not a JSON record: "
                              f"{type(exc).__name__}", field=RECORDS_FILE)


def find_sync_bundles(root: Path) -> list[Path]:
    """Whole bundles directly under ``root`` (staging directories are partial and skipped)."""
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    return sorted(p for p in root.glob("chalkbox-sync-*") if p.is_dir())
