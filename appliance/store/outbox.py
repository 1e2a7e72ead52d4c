"""The outbox: every interaction the box has acknowledged, until the centre has it.

Records are appended to numbered TinyDB segment files of at most
``segment_records`` records each, so one durable write rewrites a bounded file
whatever the box holds. Writers in any thread or process (web workers, worker,
CLI) serialise on an exclusive ``flock`` of ``.lock``; :meth:`append` returns
only once the record is on disk, and only then is the tablet told "saved".
"""
from __future__ import annotations

import fcntl
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tinydb import TinyDB

from ..errors import StoreError
from ..records import InteractionRecord
from .storage import AtomicJSONStorage

SEGMENT_RE = re.compile(r"^segment-(\d{6})\.json$")
TABLE = "records"


class Outbox:
    def __init__(self, directory: Path, segment_records: int = 1000):
        self.directory = Path(directory)
        self.segment_records = segment_records
        self._thread_lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the outbox {self.directory}: {exc}",
                             hint="check the data dir's permissions")

    # --- locking -----------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    # --- segments ------------------------------------------------------------
    def segments(self) -> list[Path]:
        found = [p for p in self.directory.iterdir() if SEGMENT_RE.match(p.name)]
        return sorted(found)

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:06d}.json"

    @staticmethod
    def _open(path: Path) -> TinyDB:
        return TinyDB(path, storage=AtomicJSONStorage)

    # --- the API -------------------------------------------------------------
    def append(self, record: InteractionRecord) -> None:
        """Durably store ``record``; raises StoreError if it could not be made durable."""
        with self._locked():
            segments = self.segments()
            path = segments[-1] if segments else self._segment_path(1)
            db = self._open(path)
            if len(db.table(TABLE)) >= self.segment_records:
                number = int(SEGMENT_RE.match(path.name).group(1)) + 1
                db = self._open(self._segment_path(number))
            db.table(TABLE).insert(record.to_dict())

    def records(self) -> Iterator[InteractionRecord]:
        """Every stored record, oldest segment first (ids are time-ordered)."""
        for path in self.segments():
            for doc in self._open(path).table(TABLE).all():
                yield InteractionRecord.from_dict(dict(doc))

    def count(self) -> int:
        return sum(len(self._open(p).table(TABLE)) for p in self.segments())
