"""The central store: every record ever ingested, once, with where it came from (SQLite).

Records are keyed by their globally unique id, so ingesting the same bundle
twice, or a re-exported bundle that overlaps an earlier one, adds nothing.
Each bundle is ingested in one transaction: all of it or none of it.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from appliance.records import InteractionRecord, utc_now

from .errors import TrainingError

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    box_id TEXT NOT NULL,
    school_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS records_box ON records (box_id, id);
-- A tablet's re-send that the box stored twice (after its dedupe window) lands once here.
CREATE UNIQUE INDEX IF NOT EXISTS records_resend ON records (box_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS ingests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    box_id TEXT NOT NULL,
    first_id TEXT NOT NULL,
    last_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    added INTEGER NOT NULL,
    at TEXT NOT NULL
);
"""


@dataclasses.dataclass(frozen=True)
class IngestResult:
    source: str
    box_id: str
    count: int
    added: int

    @property
    def duplicates(self) -> int:
        return self.count - self.added


def open_database(path: Path, schema: str = SCHEMA) -> sqlite3.Connection:
    """One connection to the central database file, with the store's durability settings.

    Other centre modules (the fleet registry) keep their tables in the same file, so a
    backup of ``chalkbox.db`` is a backup of the whole centre; they open it through here
    so every connection runs with WAL and ``synchronous=FULL``. ``schema`` is run after
    the store's own, with ``CREATE ... IF NOT EXISTS`` statements only.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
        if columns and "idempotency_key" not in columns:  # a store from before that column
            db.execute("ALTER TABLE records ADD COLUMN idempotency_key TEXT")
        db.executescript(SCHEMA)
        if schema is not SCHEMA:
            db.executescript(schema)
    except (sqlite3.Error, OSError) as exc:
        raise TrainingError(f"cannot open the central store {path}: {exc}",
                            hint="check the path, its permissions and free space")
    return db


class CentralStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = open_database(self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "CentralStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, records: Iterable[InteractionRecord], *, source: str, box_id: str,
            bodies: Iterable[str] | None = None) -> IngestResult:
        """Add records (once each). ``bodies``: their JSON, when the caller already holds it
        verified (a sync bundle's lines), which spares re-serialising every record."""
        records = list(records)
        if bodies is None:
            bodies = (json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) for r in records)
        now = utc_now()
        rows = [(r.id, r.box_id, r.school_id, r.kind, r.created_at, body, source, now,
                 r.idempotency_key) for r, body in zip(records, bodies, strict=True)]
        if not rows:
            return IngestResult(source, box_id, 0, 0)
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           rows)
            added = db.total_changes - before
            ids = sorted(row[0] for row in rows)
            db.execute("INSERT INTO ingests (source, box_id, first_id, last_id, count, added, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (source, box_id, ids[0], ids[-1], len(rows), added, utc_now()))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise TrainingError(f"ingest into {self.path} failed and was rolled back: {exc}")
        return IngestResult(source, box_id, len(rows), added)

    def count(self, box_id: str | None = None) -> int:
        if box_id is None:
            return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM records WHERE box_id = ?",
                                (box_id,)).fetchone()[0]

    def records(self, box_id: str | None = None) -> Iterator[InteractionRecord]:
        query, args = "SELECT body FROM records ORDER BY id", ()
        if box_id is not None:
            query, args = "SELECT body FROM records WHERE box_id = ? ORDER BY id", (box_id,)
        for (body,) in self._db.execute(query, args):
            yield InteractionRecord.from_dict(json.loads(body))
