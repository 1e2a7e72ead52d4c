"""Keep what the centre refused, so a person can see what a box (or a stranger) sent.

A refused push is written as ``<utc timestamp>-<box id or unknown>-<reason>.json``
(the raw body, byte for byte) and logged. The quarantine is evidence, not a queue:
nothing reads it back automatically. It is bounded twice, because anyone who can
reach the server can make it refuse things: a body over the request limit is never
written, and once the directory holds ``max_bytes`` nothing more is written
(the refusal is still logged).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

from appliance.fsutil import fsync_dir

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def quarantine_name(box_id: str | None, reason: str, now: dt.datetime | None = None) -> str:
    """The file name for a refusal; an id that is not a plain name becomes ``unknown``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    who = box_id if isinstance(box_id, str) and _SAFE.match(box_id) else "unknown"
    what = reason if _SAFE.match(reason) else "refused"
    return f"{stamp}-{who}-{what}.json"


def used_bytes(directory: Path) -> int:
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        return 0
    return total


def quarantine(directory: Path, body: bytes | None, *, box_id: str | None, reason: str,
               message: str, max_body_bytes: int, max_bytes: int) -> Path | None:
    """Log the refusal and keep ``body``; returns the file, or None when it was not kept.

    Never raises: failing to keep evidence must not turn a 4xx into a 500.
    """
    directory = Path(directory)
    name = quarantine_name(box_id, reason)
    if body is None or len(body) > max_body_bytes:
        log.warning("refused push (%s) from %s: %s; body not kept (over the limit)",
                    reason, box_id or "unknown", message)
        return None
    if used_bytes(directory) + len(body) > max_bytes:
        log.warning("refused push (%s) from %s: %s; quarantine %s is full, body not kept",
                    reason, box_id or "unknown", message, directory)
        return None
    try:
        path = _write_new(directory, name, body)
    except OSError as exc:
        log.error("refused push (%s) from %s: %s; could not quarantine it: %s",
                  reason, box_id or "unknown", message, exc)
        return None
    log.warning("refused push (%s) from %s: %s; quarantined as %s",
                reason, box_id or "unknown", message, path)
    return path


def _write_new(directory: Path, name: str, body: bytes) -> Path:
    """Write a file that did not exist (never overwrite earlier evidence), durably."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = name[:-len(".json")]
    for attempt in range(100):
        path = directory / (name if attempt == 0 else f"{stem}-{attempt}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        fsync_dir(directory)
        return path
    raise FileExistsError(f"too many quarantined files named {name}")


def quarantine_bundle(directory: Path, bundle: Path, *, reason: str, message: str,
                      max_body_bytes: int, max_bytes: int) -> Path | None:
    """Keep a refused USB sync bundle's files (as one JSON document) like a refused push."""
    import json

    files = {}
    for path in sorted(Path(bundle).iterdir()) if Path(bundle).is_dir() else []:
        if path.is_file() and path.stat().st_size <= max_body_bytes:
            files[path.name] = path.read_bytes().decode("utf-8", errors="replace")
    body = json.dumps({"bundle": Path(bundle).name, "message": message, "files": files}).encode()
    box_id = Path(bundle).name.removeprefix("chalkbox-sync-").split("-0")[0] or None
    return quarantine(directory, body, box_id=box_id, reason=reason, message=message,
                      max_body_bytes=max_body_bytes, max_bytes=max_bytes)
