"""The outbox: every interaction the box has acknowledged, until the centre has it.

Records are appended to numbered TinyDB segment files of at most
``segment_records`` records each, so one durable write rewrites a bounded file
whatever the box holds. Writers in any thread or process (web workers, worker,
CLI) serialise on an exclusive ``flock`` of ``.lock``; :meth:`append` returns
only once the record is on disk, and only then is the tablet told "saved".

Idempotency: a record carrying an ``idempotency_key`` already present in the
current segment or the ``dedupe_segments`` full segments before it is not
stored again; the stored one is returned. Tablets re-send within minutes, well
inside that window (thousands of records).
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
    def __init__(self, directory: Path, segment_records: int = 1000, dedupe_segments: int = 2):
        self.directory = Path(directory)
        self.segment_records = segment_records
        self.dedupe_segments = dedupe_segments
        self._thread_lock = threading.Lock()
        # Keys of full segments never change: read each once per process.
        self._full_segment_keys: dict[Path, dict[str, dict]] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the outbox {self.directory}: {exc.strerror}",
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
        return sorted(p for p in self.directory.iterdir() if SEGMENT_RE.match(p.name))

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:06d}.json"

    @staticmethod
    def _open(path: Path) -> TinyDB:
        return TinyDB(path, storage=AtomicJSONStorage)

    @staticmethod
    def _keys(docs) -> dict[str, dict]:
        return {d["idempotency_key"]: d for d in docs if d.get("idempotency_key")}

    def _recent_keys(self, full_segments: list[Path]) -> dict[str, dict]:
        keys: dict[str, dict] = {}
        for path in full_segments[-self.dedupe_segments:] if self.dedupe_segments else []:
            if path not in self._full_segment_keys:
                self._full_segment_keys[path] = self._keys(self._open(path).table(TABLE).all())
            keys.update(self._full_segment_keys[path])
        return keys

    # --- the API -------------------------------------------------------------
    def append(self, record: InteractionRecord) -> InteractionRecord:
        """Durably store ``record`` and return it, or return the already stored record
        with the same idempotency key. Raises StoreError if it could not be made durable."""
        with self._locked():
            segments = self.segments()
            path = segments[-1] if segments else self._segment_path(1)
            table = self._open(path).table(TABLE)
            docs = table.all()
            if len(docs) >= self.segment_records:
                number = int(SEGMENT_RE.match(path.name).group(1)) + 1
                segments, docs = segments + [self._segment_path(number)], []
                table = self._open(segments[-1]).table(TABLE)
            if record.idempotency_key:
                earlier = {**self._recent_keys(segments[:-1]), **self._keys(docs)}
                if record.idempotency_key in earlier:
                    return InteractionRecord.from_dict(dict(earlier[record.idempotency_key]))
            table.insert(record.to_dict())
            return record

    def records(self) -> Iterator[InteractionRecord]:
        """Every stored record, oldest segment first (ids are time-ordered)."""
        for path in self.segments():
            for doc in self._open(path).table(TABLE).all():
                yield InteractionRecord.from_dict(dict(doc))

    def count(self) -> int:
        return sum(len(self._open(p).table(TABLE)) for p in self.segments())
