"""The outbox: every interaction the box has acknowledged, until the centre has it.

Durability: records go into numbered TinyDB segment files of at most
``segment_records`` records, each rewritten whole through AtomicJSONStorage
(temp file, fsync, rename, directory fsync). A write's cost is bounded by the
segment size, not by what the box holds. :meth:`append` returns only once the
record is on disk; only then is the tablet told "saved".

Concurrency: writers in any thread or process (web workers, huey worker, CLI)
serialise on an exclusive ``flock`` of ``.lock``. Inside a process, concurrent
appends are group-committed: the first writer to get the commit lock writes
every queued record in one segment rewrite and one fsync, so forty tablets
share a disk flush instead of queueing for forty.

Positions: each record has a position, ``segment number * SPAN + index``,
increasing in the order records were stored. The centre's acknowledgements
name positions; ``acked.json`` holds the forward-only high-water mark below
which everything has reached the centre. Nothing above it is ever deleted.

Idempotency: a record whose ``idempotency_key`` is already in the current
segment or the ``dedupe_segments`` segments before it is not stored again; the
stored one is returned (tablets re-send within minutes, well inside that window).
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

from ..errors import StoreError
from ..ids import id_timestamp_ms, is_uuid7
from ..fsutil import atomic_write_text, file_lock
from ..records import InteractionRecord, upgrade_record
from .storage import AtomicJSONStorage

SEGMENT_RE = re.compile(r"^segment-(\d{6})\.json$")
TABLE = "records"
SPAN = 1_000_000          # positions per segment; segment_records is capped below it
ACKED_FILE = "acked.json"
# A record's id carries its creation time; a box whose clock was set back after that could
# store it in a segment whose mtime is earlier. A day covers a wrong time zone or a manual fix.
CLOCK_SLACK_S = 86_400.0


@dataclasses.dataclass
class _Ticket:
    record: InteractionRecord
    done: bool = False
    result: InteractionRecord | None = None
    error: BaseException | None = None


class Outbox:
    def __init__(self, directory: Path, segment_records: int = 1000, dedupe_segments: int = 2,
                 min_free_bytes: int = 0):
        if not 1 <= segment_records < SPAN:
            raise StoreError(f"segment_records must be between 1 and {SPAN - 1}")
        self.directory = Path(directory)
        self.segment_records = segment_records
        self.dedupe_segments = dedupe_segments
        self.min_free_bytes = min_free_bytes
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._cache: tuple[Path, tuple[int, int], dict[str, dict], list[str]] | None = None
        self._current: int | None = None  # the segment being written, once known
        self._full_segment_keys: dict[Path, dict[str, dict]] = {}  # full segments never change
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the outbox {self.directory}: {exc.strerror}",
                             hint="check the data dir's permissions")

    # --- locking and files -------------------------------------------------------
    def _locked(self):
        """Exclusive across processes (flock); callers hold a thread lock already."""
        return file_lock(self.directory / ".lock")

    def segments(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if SEGMENT_RE.match(p.name))

    @staticmethod
    def segment_number(path: Path) -> int:
        return int(SEGMENT_RE.match(path.name).group(1))

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:06d}.json"

    def _read(self, path: Path) -> tuple[dict[str, dict], list[str]]:
        """A segment's documents {"1": doc, ...} and their serialised JSON members, cached
        while the file is unchanged (segments only grow, so a write serialises only the
        new records and joins them to the cached members)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}, []
        key = (stat.st_mtime_ns, stat.st_size)
        if self._cache and self._cache[0] == path and self._cache[1] == key:
            return self._cache[2], self._cache[3]
        docs = (AtomicJSONStorage(path).read() or {}).get(TABLE, {})
        members = [_member(k, doc) for k, doc in docs.items()]
        self._cache = (path, key, docs, members)
        return docs, members

    def _write(self, path: Path, docs: dict[str, dict], members: list[str]) -> None:
        # Byte for byte what AtomicJSONStorage.write({TABLE: docs}) would write.
        payload = '{"' + TABLE + '":{' + ",".join(members) + "}}"
        AtomicJSONStorage(path).write_bytes(payload.encode("utf-8"))
        stat = path.stat()
        self._cache = (path, (stat.st_mtime_ns, stat.st_size), docs, members)

    def _current_segment(self) -> int:
        """The number of the newest segment, without listing a directory of thousands of
        files on every write: start from the last known and step over any that another
        process has started since."""
        if self._current is None or not self._segment_path(self._current).exists():
            # First use, or our segment was compacted away while this process idled:
            # list once, so a new record never lands in a segment below the mark.
            segments = self.segments()
            self._current = self.segment_number(segments[-1]) if segments else 1
        while self._segment_path(self._current + 1).exists():
            self._current += 1
        return self._current

    def _check_space(self) -> None:
        if self.min_free_bytes and shutil.disk_usage(self.directory).free < self.min_free_bytes:
            raise StoreError(f"the disk holding {self.directory} is nearly full",
                             hint="sync to the centre (network or USB) and run compaction, "
                                  "or free space on the data disk")

    # --- writing -------------------------------------------------------------------
    def append(self, record: InteractionRecord) -> InteractionRecord:
        """Durably store ``record`` and return it, or return the stored record with the same
        idempotency key. Raises StoreError when it could not be made durable."""
        ticket = _Ticket(record)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._commit_lock:
            if not ticket.done:  # nobody committed us while we waited: lead this batch
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    with self._locked():
                        self._commit(batch)
                except BaseException as exc:
                    for t in batch:
                        if not t.done:  # tickets in an already written segment are saved
                            t.error = exc
                finally:
                    for t in batch:
                        t.done = True
        if ticket.error is not None:
            if isinstance(ticket.error, StoreError):
                raise ticket.error
            raise StoreError(f"could not store the record: {ticket.error}",
                             hint="check the data disk") from ticket.error
        return ticket.result

    def _commit(self, batch: list[_Ticket]) -> None:
        self._check_space()
        number = self._current_segment()
        cached_docs, cached_members = self._read(self._segment_path(number))
        docs, members = dict(cached_docs), list(cached_members)
        keys = {**self._recent_keys(number), **_keys(docs.values())}
        waiting: list[_Ticket] = []  # stored in ``docs``, durable once that segment is written

        def flush() -> None:
            self._write(self._segment_path(number), docs, members)
            for ticket in waiting:  # only now may these tablets be told "saved"
                ticket.result, ticket.done = ticket.record, True
            waiting.clear()

        for ticket in batch:
            key = ticket.record.idempotency_key
            if key and key in keys:
                ticket.result = InteractionRecord.from_dict(upgrade_record(keys[key]))
                ticket.done = True
                continue
            if len(docs) >= self.segment_records:
                if waiting:
                    flush()
                number, docs, members = number + 1, {}, []
                self._current = number
            doc = ticket.record.to_dict()
            index = str(len(docs) + 1)
            docs[index] = doc
            members.append(_member(index, doc))
            if key:
                keys[key] = doc
            waiting.append(ticket)
        if waiting:
            flush()

    def _recent_keys(self, current: int) -> dict[str, dict]:
        """Idempotency keys of the ``dedupe_segments`` full segments before ``current``."""
        keys: dict[str, dict] = {}
        for number in range(max(1, current - self.dedupe_segments), current):
            path = self._segment_path(number)
            if not path.exists():
                continue
            if path not in self._full_segment_keys:
                docs = (AtomicJSONStorage(path).read() or {}).get(TABLE, {})
                self._full_segment_keys[path] = _keys(docs.values())
            keys.update(self._full_segment_keys[path])
        return keys

    # --- reading -------------------------------------------------------------------
    def entries(self, after: int = -1, since: float | None = None
                ) -> Iterator[tuple[int, InteractionRecord]]:
        """(position, record) of every stored record with a position above ``after``.

        ``since`` (a Unix time): skip the segments last written before it. Every record in
        such a segment was stored before ``since``, so a reader that wants only recent
        records (today's dashboard, the review window, a thumbs on a recent answer) does
        not parse a whole term of history; the records it gets may still be older."""
        for path in self.segments():
            base = self.segment_number(path) * SPAN
            if base + SPAN <= after:
                continue
            if since is not None and _written_before(path, since):
                continue
            docs = (AtomicJSONStorage(path).read() or {}).get(TABLE, {})
            for index in sorted(docs, key=int):
                position = base + int(index)
                if position > after:
                    yield position, InteractionRecord.from_dict(upgrade_record(docs[index]))

    def records(self, since: float | None = None) -> Iterator[InteractionRecord]:
        """Every stored record, in the order it was stored (``since``: see :meth:`entries`)."""
        return (record for _, record in self.entries(since=since))

    def find(self, record_id: str, clock_slack_s: float = CLOCK_SLACK_S
             ) -> InteractionRecord | None:
        """The stored record with this UUIDv7 id, or None. Its id says when it was made, and
        it was stored after that, so only segments written since then (less a day of slack
        for a box clock set back) are read."""
        if not is_uuid7(record_id or ""):
            return None
        since = id_timestamp_ms(record_id) / 1000 - clock_slack_s
        return next((r for r in self.records(since=since) if r.id == record_id), None)

    def count(self) -> int:
        return sum(len((AtomicJSONStorage(p).read() or {}).get(TABLE, {}))
                   for p in self.segments())

    # --- acknowledgements and retention -------------------------------------------
    def acked_through(self) -> int:
        """Every record at or below this position has reached the centre (-1: none)."""
        try:
            return int(json.loads((self.directory / ACKED_FILE).read_text())["acked_through"])
        except FileNotFoundError:
            return -1
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.directory / ACKED_FILE} is damaged ({exc})",
                             hint="delete it: records are then simply sent again, and the "
                                  "centre ignores the ones it has")

    def pending(self, limit: int | None = None,
                after: int | None = None) -> list[tuple[int, InteractionRecord]]:
        """Records not yet acknowledged (and past ``after``), oldest first, at most ``limit``."""
        out = []
        mark = self.acked_through()
        for entry in self.entries(mark if after is None else max(mark, after)):
            if limit is not None and len(out) >= limit:
                break
            out.append(entry)
        return out

    def acknowledge(self, outbox_from: int, outbox_to: int) -> bool:
        """The centre holds the records stored between these positions: move the mark.

        Moves only forward, and only when nothing unacknowledged lies before
        ``outbox_from`` (so no record is ever skipped). Returns whether it moved.
        """
        with self._commit_lock, self._locked():
            mark = self.acked_through()
            if outbox_to <= mark:
                return False
            first_pending = next((pos for pos, _ in self.entries(mark)), None)
            if first_pending is None or outbox_from > first_pending:
                return False
            atomic_write_text(self.directory / ACKED_FILE,
                              json.dumps({"acked_through": outbox_to, "at": time.time()}))
            return True

    def unsynced(self) -> tuple[int, InteractionRecord | None]:
        """(how many records await the centre, the oldest of them)."""
        entries = self.entries(self.acked_through())
        first = next(entries, None)
        return (0, None) if first is None else (1 + sum(1 for _ in entries), first[1])

    def compact(self, keep_seconds: float) -> list[Path]:
        """Delete full segments wholly acknowledged and untouched for ``keep_seconds``."""
        removed = []
        with self._commit_lock, self._locked():
            mark = self.acked_through()
            segments = self.segments()
            now = time.time()
            for path in segments[:-1]:  # never the segment being written
                docs = (AtomicJSONStorage(path).read() or {}).get(TABLE, {})
                last_position = self.segment_number(path) * SPAN + len(docs)
                if last_position <= mark and now - path.stat().st_mtime >= keep_seconds:
                    path.unlink()
                    self._full_segment_keys.pop(path, None)
                    removed.append(path)
        return removed


def _written_before(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime < since
    except FileNotFoundError:  # compacted away meanwhile
        return True


def _member(index: str, doc: dict) -> str:
    return f'"{index}":' + json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _keys(docs) -> dict[str, dict]:
    return {d["idempotency_key"]: d for d in docs if d.get("idempotency_key")}
