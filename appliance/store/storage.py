"""A TinyDB storage that survives kill -9 and power loss.

TinyDB's JSONStorage truncates and rewrites its file in place: a crash in the
middle leaves half a JSON document. This storage writes the whole document to a
temp file, fsyncs it, renames it over the old one and fsyncs the directory
(appliance.fsutil.atomic_write_bytes), so a reader only ever sees a complete file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from ..errors import StoreError
from ..fsutil import atomic_write_bytes


class AtomicJSONStorage(Storage):
    def __init__(self, path: str | Path, **_ignored: Any):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            # Atomic writes make this impossible short of disk damage; say so plainly.
            raise StoreError(f"{self.path} is not readable JSON ({exc})",
                             hint="run 'chalkbox box doctor'; restore the data dir from backup")

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self.write_bytes(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    def write_bytes(self, payload: bytes) -> None:
        """Durably replace the file with ``payload`` (already serialised TinyDB JSON)."""
        try:
            atomic_write_bytes(self.path, payload)
        except OSError as exc:
            raise StoreError(f"could not write {self.path}: {exc.strerror or exc}",
                             hint="check free disk space and permissions of the data dir")

    def close(self) -> None:
        pass
