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
import stat
from pathlib import Path

from appliance.fsutil import fsync_dir
from appliance.validate import PLAIN_ID

log = logging.getLogger(__name__)
_SAFE = PLAIN_ID


def quarantine_name(box_id: str | None, reason: str, now: dt.datetime | None = None) -> str:
    """The file name for a refusal; an id that is not a plain name becomes ``unknown``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    who = box_id if isinstance(box_id, str) and _SAFE.match(box_id) else "unknown"
    what = reason if _SAFE.match(reason) else "refused"
    return f"{stamp}-{who}-{what}.json"


def used_bytes(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
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
    """Keep a refused USB sync bundle's regular files, byte for byte (symbolic links and
    files over ``max_body_bytes`` are left out), under the quarantine budget."""
    import shutil

    files = []
    for path in sorted(Path(bundle).iterdir()) if Path(bundle).is_dir() else []:
        status = path.lstat()
        if stat.S_ISREG(status.st_mode) and status.st_size <= max_body_bytes:
            files.append(path)
    total = sum(p.lstat().st_size for p in files)
    if used_bytes(directory) + total > max_bytes:
        log.warning("refused bundle %s: %s; quarantine %s is full, not kept", Path(bundle).name,
                    message, directory)
        return None
    dest = Path(directory) / quarantine_name(None, reason).removesuffix(".json")
    dest = dest.with_name(dest.name + "-" + Path(bundle).name[:120])
    dest.mkdir(parents=True, exist_ok=False)
    for path in files:
        shutil.copyfile(path, dest / path.name, follow_symlinks=False)
    (dest / "REFUSED.txt").write_text(message + "\n")
    log.warning("refused bundle %s: %s; quarantined as %s", Path(bundle).name, message, dest)
    return dest
