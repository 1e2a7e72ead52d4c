"""Backup and restore of a box's data dir, verified end to end.

A backup is ``chalkbox-backup-<box_id>-<stamp>/`` (on a USB stick, usually): a copy of
the data dir plus ``backup-manifest.json`` with every file's size, sha256 and mode,
the directories and the ``current``/``previous`` model symlinks (recorded, not copied:
sticks are FAT and hold no symlinks or modes). It is staged and renamed into place, and
only called good after every file has been read back from the stick and matched.

The outbox is snapshotted under its writers' flock: every file in it is hard-linked
into a private snapshot while the lock is held (milliseconds; writers replace files
by rename, so a linked file never changes), then copied at the stick's pace with
tablets still saving answers. The worker's queue and heartbeat are not backed up:
huey tasks derive their work from the store, and a restored box must not look alive.

Restore checks the whole backup first, builds the new data dir beside the old one,
and swaps them by renames; the old one is kept, so a failure changes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from .config import CONFIG_FILE, BoxConfig, load_config
from .errors import ApplianceError
from .fsutil import CHUNK, atomic_write_text, fsync_dir, fsync_tree, publish_dir

FORMAT = "chalkbox-backup"
FORMAT_VERSION = 1
MANIFEST = "backup-manifest.json"
MARGIN_BYTES = 1024 * 1024
NOT_USABLE_HINT = "this backup cannot be trusted: use another one (nothing on the box was changed)"


class BackupError(ApplianceError):
    """A backup could not be made or verified, or a restore was refused."""


@dataclasses.dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    bytes: int


def stamped_name(dest: Path, prefix: str) -> str:
    """``<prefix>-<UTC stamp>``, with a counter if that name is taken under ``dest``."""
    name = f"{prefix}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    candidate, n = name, 1
    while any((Path(dest) / f"{pre}{candidate}").exists() for pre in ("", ".staging-", ".")):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def excluded(rel: PurePosixPath) -> bool:
    """Transient or process-local files: temp files, staging dirs, locks, the queue."""
    name = rel.name
    if name.endswith(".tmp") or name.startswith((".staging-", ".old-")) or name == ".lock":
        return True
    if rel.parts[0] == "worker" and len(rel.parts) == 2:
        return name.startswith("huey.db") or name == "heartbeat"
    return rel.parts[:2] == ("sync", "download")


def _scan(root: Path, skip_top: str | None = None) -> tuple[dict, dict, dict]:
    """(dirs {rel: mode}, files {rel: (path, size, mode)}, links {rel: target}) under root."""
    dirs, files, links = {}, {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if excluded(rel) or (skip_top and rel.parts[0] == skip_top):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = path.lstat()
            if path.is_symlink():
                links[str(rel)] = os.readlink(path)
            elif path.is_dir():
                dirs[str(rel)] = st.st_mode & 0o777
            elif path.is_file():
                files[str(rel)] = (path, st.st_size, st.st_mode & 0o777)
    return dirs, files, links


def _copy(src: Path, dst: Path, mode: int = 0o600) -> tuple[int, str]:
    """Copy and hash in one pass: the manifest holds the hash of the bytes written."""
    digest, size = hashlib.sha256(), 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode),
                                      "wb") as fout:
        for block in iter(lambda: fin.read(CHUNK), b""):
            digest.update(block)
            fout.write(block)
            size += len(block)
    return size, digest.hexdigest()


def _hash_from_disk(path: Path) -> tuple[int, str]:
    """Size and sha256 as the device has them, not as the page cache remembers them."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _snapshot_outbox(outbox: Path, into: Path) -> None:
    """Hard-link the outbox's files into ``into`` while holding the writers' flock."""
    into.mkdir(parents=True)
    fd = os.open(outbox / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for path in outbox.iterdir():
            if path.is_file() and not path.is_symlink() and not excluded(PurePosixPath(path.name)):
                try:
                    os.link(path, into / path.name)
                except OSError:  # a filesystem without hard links: copy, still under the lock
                    shutil.copy2(path, into / path.name)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def make_backup(config: BoxConfig, dest: Path) -> BackupResult:
    data_dir, dest = Path(config.data_dir).absolute(), Path(dest).absolute()
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(f"{dest} is inside the data dir {data_dir}",
                          hint="back up to a USB stick or another disk")
    dirs, files, links = _scan(data_dir)
    need = sum(size for _, size, _ in files.values()) + MARGIN_BYTES
    free = shutil.disk_usage(dest).free
    if free < need:
        raise BackupError(f"not enough space on {dest}: the backup needs {need / 2**20:.1f} MB, "
                          f"{free / 2**20:.1f} MB are free",
                          hint="use a bigger stick or free space on it; the box was not changed")
    outbox_rel = config.outbox_dir.relative_to(config.data_dir).as_posix()
    snapshot = data_dir / f".staging-backup-{os.getpid()}"
    name = stamped_name(dest, f"chalkbox-backup-{config.box_id}")
    staging, final = dest / f".staging-{name}", dest / name
    shutil.rmtree(snapshot, ignore_errors=True)
    try:
        _snapshot_outbox(config.outbox_dir, snapshot / outbox_rel)
        dirs, files, links = _scan(data_dir, skip_top=outbox_rel)
        snap_dirs, snap_files, _ = _scan(snapshot)
        dirs.update(snap_dirs)
        dirs[outbox_rel] = config.outbox_dir.stat().st_mode & 0o777
        files.update(snap_files)
        dirs["."] = data_dir.stat().st_mode & 0o777
        staging.mkdir(mode=0o700)
        table = {}
        for rel, (src, _size, mode) in sorted(files.items()):
            size, sha = _copy(src, staging / rel)
            table[rel] = {"bytes": size, "sha256": sha, "mode": f"{mode:04o}"}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "box_id": config.box_id,
                    "school_id": config.school_id, "source": str(data_dir),
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "total_bytes": sum(e["bytes"] for e in table.values()),
                    "dirs": {rel: f"{mode:04o}" for rel, mode in sorted(dirs.items())},
                    "links": dict(sorted(links.items())), "files": table}
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1), mode=0o600)
        publish_dir(staging, final)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not isinstance(exc, OSError):
            raise
        raise BackupError(f"could not write the backup to {dest}: {exc.strerror or exc}",
                          hint="check the stick (space, write protection) and try again; the "
                               "box was not changed")
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    try:
        verify_backup(final)
    except BackupError as exc:
        shutil.rmtree(final, ignore_errors=True)
        raise BackupError(f"the backup read back wrong and was deleted: {exc.message}",
                          hint="the stick may be failing: use another one")
    return BackupResult(final, len(table), manifest["total_bytes"])


def _safe_rel(rel: Any) -> str:
    path = PurePosixPath(rel) if isinstance(rel, str) else None
    if path is None or path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"the backup manifest names an unsafe path {rel!r}", hint=NOT_USABLE_HINT)
    return str(path)


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = Path(backup_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(f"{backup_dir} has no {MANIFEST}: it is not a Chalkbox backup",
                          hint="give the chalkbox-backup-... directory written by 'chalkbox box "
                               "backup'")
    except ValueError:
        raise BackupError(f"{path} is not readable JSON", hint=NOT_USABLE_HINT)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Chalkbox backup manifest", hint=NOT_USABLE_HINT)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} has format_version {manifest.get('format_version')!r}",
                          hint="restore it with the Chalkbox version that wrote it, or newer")
    try:
        files = {_safe_rel(k): (int(v["bytes"]), str(v["sha256"]), int(v["mode"], 8) & 0o777)
                 for k, v in manifest["files"].items()}
        dirs = {k if k == "." else _safe_rel(k): int(m, 8) & 0o777
                for k, m in manifest["dirs"].items()}
        links = {_safe_rel(k): str(t) for k, t in manifest["links"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BackupError(f"{path} is damaged (a file, dir or link entry is malformed)",
                          hint=NOT_USABLE_HINT)
    if CONFIG_FILE not in files:
        raise BackupError(f"{path} lists no {CONFIG_FILE}", hint=NOT_USABLE_HINT)
    for rel, target in links.items():
        if "/" in target or target in ("", ".", ".."):  # models' links name a sibling
            raise BackupError(f"the backup's link {rel} points outside its directory",
                              hint=NOT_USABLE_HINT)
    return {**manifest, "files": files, "dirs": dirs, "links": links}


def verify_backup(backup_dir: Path) -> dict[str, Any]:
    """The parsed manifest, once every listed file reads back with its size and sha256."""
    manifest = read_manifest(backup_dir)
    for rel, (size, sha, _mode) in manifest["files"].items():
        path = Path(backup_dir) / rel
        if path.is_symlink() or not path.is_file():
            raise BackupError(f"{rel} is missing from the backup {backup_dir}",
                              hint=NOT_USABLE_HINT)
        if _hash_from_disk(path) != (size, sha):
            raise BackupError(f"{rel} in the backup {backup_dir} does not match its manifest "
                              f"(damaged or changed)", hint=NOT_USABLE_HINT)
    return manifest


def restore_backup(backup_dir: Path, data_dir: Path, *, force: bool = False) -> Path | None:
    """Make ``data_dir`` the backed-up box; returns where the old data dir was kept."""
    backup_dir, data_dir = Path(backup_dir).absolute(), Path(data_dir).absolute()
    manifest = verify_backup(backup_dir)
    if (data_dir / CONFIG_FILE).exists() and not force:
        raise BackupError(f"{data_dir} already holds a box; restoring would replace it",
                          hint="pass --force to replace it (the current data dir is kept beside "
                               "it as <data_dir>.before-restore-<stamp>)")
    parent = data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    need = sum(size for size, _, _ in manifest["files"].values()) + MARGIN_BYTES
    if shutil.disk_usage(parent).free < need:
        raise BackupError(f"not enough space beside {data_dir} for the restored box "
                          f"({need / 2**20:.1f} MB)", hint="free space on the data disk")
    aside_name = stamped_name(parent, f"{data_dir.name}.before-restore")
    staging = parent / f".{aside_name}"
    try:
        _materialise(backup_dir, manifest, staging)
        load_config(staging)  # the restored settings still make a valid box
        if data_dir.is_dir() and os.geteuid() == 0:  # keep the service user's ownership
            owner = data_dir.stat()
            for path in [staging, *staging.rglob("*")]:
                os.lchown(path, owner.st_uid, owner.st_gid)
        fsync_tree(staging)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BackupError(f"could not restore into {parent}: {exc.strerror or exc}",
                              hint="check the data disk's space and permissions")
        raise
    aside = parent / aside_name if data_dir.exists() else None
    try:
        if aside:
            os.rename(data_dir, aside)
        try:
            os.rename(staging, data_dir)
        except OSError:
            if aside:
                os.rename(aside, data_dir)
            raise
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"could not swap in the restored data dir: {exc.strerror or exc}",
                          hint="the data dir must not be a mount point: restore into a "
                               "directory on it, and point the box there")
    fsync_dir(parent)
    return aside


def _materialise(backup_dir: Path, manifest: dict[str, Any], staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    for rel in sorted(manifest["dirs"]):
        (staging / rel).mkdir(parents=True, exist_ok=True)
    for rel, (size, sha, mode) in manifest["files"].items():
        if _copy(backup_dir / rel, staging / rel, mode) != (size, sha):  # changed since verify
            raise BackupError(f"{rel} changed in the backup while it was being restored",
                              hint=NOT_USABLE_HINT)
        os.chmod(staging / rel, mode)
    for rel, target in manifest["links"].items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, staging / rel)
    for rel, mode in sorted(manifest["dirs"].items(), reverse=True):  # children first
        os.chmod(staging / rel, mode)
