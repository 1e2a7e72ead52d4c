"""Durable file operations: what "written" means on a box that loses power.

A file counts as written only after its bytes and the directory entry that
names it have both reached the disk: write a temp file, fsync it, rename it over
the target, fsync the directory. Readers see the old file or the new one, never
half of either.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (bottom-up), then root itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def publish_dir(staging: Path, final: Path) -> None:
    """Make a fully written staging directory appear at ``final`` in one rename.

    An older ``final`` is first renamed aside and deleted only after the new one is in
    place, so at every instant one whole version exists (the aside copy is hidden,
    and readers skip names that start with a dot).
    """
    fsync_tree(staging)
    aside = None
    if final.exists():
        aside = final.with_name(f".old-{final.name}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(staging, final)
    fsync_dir(final.parent)
    if aside is not None:
        shutil.rmtree(aside)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(root: Path, names: list[str]) -> dict[str, dict[str, object]]:
    """{name: {sha256, bytes}} for the manifest of a bundle."""
    return {name: {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
            for name in names}


def first_file_problem(root: Path, files: dict[str, dict[str, object]]) -> str | None:
    """None when every listed file exists with its sha256; else what is wrong, in words."""
    for name, entry in files.items():
        path = Path(root) / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != entry["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive flock on ``path`` (created if needed): one writer across processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_bounded(path: Path, limit: int) -> bytes:
    """A small file's bytes; refuses (ValueError) a file over ``limit`` or a symlink."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path.name} is a symbolic link")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path.name} is over {limit} bytes")
    return data
