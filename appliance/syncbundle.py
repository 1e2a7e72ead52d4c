"""The sync bundle: how records leave the box (network upload or USB stick).

A bundle is a directory ``chalkbox-sync-<box>-<first id>/`` holding
``records.jsonl`` (one InteractionRecord per line, in id order) and
``manifest.json`` (box, id range, count, sha256 of each file). It is written in
a hidden staging directory and renamed into place, so a pulled stick leaves
either a whole bundle or a staging directory that readers ignore.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import validate as v
from .errors import FormatError
from .fsutil import describe_files, first_file_problem, publish_dir
from .records import InteractionRecord, utc_now

FORMAT = "chalkbox-sync"
FORMAT_VERSION = 1
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "manifest.json"
STAGING_PREFIX = ".staging-"
MAX_LINE_BYTES = 64 * 1024


def bundle_name(box_id: str, first_id: str) -> str:
    return f"chalkbox-sync-{box_id}-{first_id}"


def write_sync_bundle(records: Iterable[InteractionRecord], dest_parent: Path, *, box_id: str,
                      school_id: str) -> Path | None:
    """Write ``records`` as one bundle under ``dest_parent``; None when there is nothing to write."""
    ordered = sorted(records, key=lambda r: r.id)
    if not ordered:
        return None
    dest_parent = Path(dest_parent)
    final = dest_parent / bundle_name(box_id, ordered[0].id)
    staging = dest_parent / (STAGING_PREFIX + final.name)
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / RECORDS_FILE, "w", encoding="utf-8") as fh:
        for record in ordered:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "box_id": box_id,
        "school_id": school_id,
        "created_at": utc_now(),
        "first_id": ordered[0].id,
        "last_id": ordered[-1].id,
        "count": len(ordered),
        "files": describe_files(staging, [RECORDS_FILE]),
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    publish_dir(staging, final)
    return final


def read_manifest(bundle: Path) -> dict[str, Any]:
    path = Path(bundle) / MANIFEST_FILE
    if not path.is_file():
        raise FormatError(f"{bundle} has no {MANIFEST_FILE}; it is not a sync bundle (or is partial)",
                          field=MANIFEST_FILE, hint="export the bundle again from the box")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}", field=MANIFEST_FILE)
    data = dict(v.require_mapping(data, "manifest"))
    v.format_header(data, FORMAT, FORMAT_VERSION, "upgrade Chalkbox at the centre")
    for name in ("box_id", "school_id", "first_id", "last_id"):
        v.text(data, name, max_len=64)
    v.integer(data, "count", minimum=1)
    data["files"] = v.file_table(data, [RECORDS_FILE])
    return data


def verify_sync_bundle(bundle: Path) -> dict[str, Any]:
    """Check the manifest and every file's checksum; return the manifest."""
    manifest = read_manifest(bundle)
    problem = first_file_problem(bundle, manifest["files"])
    if problem:
        raise FormatError(f"{problem}: the bundle is incomplete, damaged or was tampered with",
                          field=f"files.{problem.split()[0]}.sha256",
                          hint="export the bundle again from the box")
    return manifest


def read_sync_bundle(bundle: Path) -> tuple[dict[str, Any], list[InteractionRecord]]:
    """Verify, then parse every record; all or nothing (never half a bundle)."""
    manifest = verify_sync_bundle(bundle)
    records = list(_parse_lines(Path(bundle) / RECORDS_FILE))
    if len(records) != manifest["count"]:
        raise FormatError(f"manifest says {manifest['count']} records, file holds {len(records)}",
                          field="count")
    if records[0].id != manifest["first_id"] or records[-1].id != manifest["last_id"]:
        raise FormatError("records do not match the manifest's id range", field="first_id")
    if any(r.box_id != manifest["box_id"] for r in records):
        raise FormatError("a record's box_id differs from the manifest's", field="box_id")
    return manifest, records


def _parse_lines(path: Path) -> Iterator[InteractionRecord]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if len(line) > MAX_LINE_BYTES:
                raise FormatError(f"{path.name} line {number} is over {MAX_LINE_BYTES} bytes",
                                  field=RECORDS_FILE)
            try:
                data = json.loads(line)
                yield InteractionRecord.from_dict(data)
            except FormatError as exc:
                raise FormatError(f"{path.name} line {number}: {exc.message}", field=exc.field)
            except (ValueError, RecursionError) as exc:
                raise FormatError(f"{path.name} line {number} is not a JSON record: "
                                  f"{type(exc).__name__}", field=RECORDS_FILE)


def find_sync_bundles(root: Path) -> list[Path]:
    """Whole bundles directly under ``root`` (staging directories are partial and skipped)."""
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    return sorted(p for p in root.glob("chalkbox-sync-*") if p.is_dir())
