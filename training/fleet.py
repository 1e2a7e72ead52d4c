"""The fleet registry: which boxes may talk to the centre, and what they last said.

A box proves who it is with a random token issued once, at ``add_box`` (shown to the
technician, typed into the box at provisioning). The centre keeps only the token's
sha256, so a copy of the database does not let anyone impersonate a box; rotating
issues a new token and the old one stops working at once. The tables live in the
central store's database file (see ``training.store.open_database``), so the
records a box sent and the box itself are backed up together.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Mapping

from appliance.errors import FormatError
from appliance.records import utc_now
from appliance.validate import PLAIN_ID

from .errors import TrainingError
from .store import open_database

FLEET_SCHEMA = """
CREATE TABLE IF NOT EXISTS boxes (
    box_id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    added_at TEXT NOT NULL,
    last_seen TEXT,
    models TEXT NOT NULL DEFAULT '{}',
    health TEXT NOT NULL DEFAULT '{}'
);
"""

#: Box and school ids end up in file names (quarantine, ack files, published scopes),
#: so the registry accepts only plain names.
ID_RE = PLAIN_ID  # box and school ids name files (ack files, quarantine): the box's rule
MAX_TOKEN_CHARS = 256
MAX_MODELS = 16
MAX_HEALTH_BYTES = 16 * 1024
# Compared against when the box is unknown, so a wrong box id costs the same time.
_NO_BOX_DIGEST = hashlib.sha256(b"no such box").hexdigest()


@dataclasses.dataclass(frozen=True)
class BoxInfo:
    box_id: str
    school_id: str


@dataclasses.dataclass(frozen=True)
class BoxStatus:
    box_id: str
    school_id: str
    added_at: str
    last_seen: str | None
    models: dict[str, str]
    health: dict[str, Any]
    records: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def is_plain_id(value: Any) -> bool:
    return isinstance(value, str) and bool(ID_RE.match(value))


def check_id(value: str, what: str) -> str:
    if not is_plain_id(value):
        raise TrainingError(f"{what} {value!r} is not a plain id",
                            hint="use 1 to 64 letters, digits, '-', '_' or '.', "
                                 "starting with a letter or digit")
    return value


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def parse_report(models: Any, health: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Validate what a box reports: ``{task: version}`` and a small JSON object of health."""
    if not isinstance(models, Mapping):
        raise FormatError("'models' must be an object {task: version}", field="models")
    if len(models) > MAX_MODELS:
        raise FormatError(f"'models' holds more than {MAX_MODELS} tasks", field="models")
    clean = {}
    for task, version in models.items():
        if not is_plain_id(task) or not isinstance(version, str) or not 0 < len(version) <= 64:
            raise FormatError(f"'models.{str(task)[:64]}' must map a task name to a version "
                              "string of 1 to 64 characters", field="models")
        clean[task] = version
    if not isinstance(health, Mapping):
        raise FormatError("'health' must be an object", field="health")
    try:
        encoded = json.dumps(health, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise FormatError("'health' must be plain JSON", field="health") from None
    if len(encoded.encode("utf-8", "replace")) > MAX_HEALTH_BYTES:
        raise FormatError(f"'health' is over {MAX_HEALTH_BYTES} bytes", field="health")
    return clean, json.loads(encoded)


class Fleet:
    """The registry, on its own connection to the central database (one per thread)."""

    def __init__(self, db_path: Path):
        self.path = Path(db_path)
        self._db = open_database(self.path, FLEET_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_box(self, box_id: str, school_id: str, *, rotate: bool = False) -> str:
        """Register a box (or, with ``rotate``, give it a new token); returns the token.

        The token is returned once and never stored: lose it and rotate.
        """
        check_id(box_id, "box id")
        check_id(school_id, "school id")
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        with self._write():
            row = self._db.execute("SELECT school_id FROM boxes WHERE box_id = ?",
                                   (box_id,)).fetchone()
            if row is not None and not rotate:
                raise TrainingError(f"box {box_id} is already registered (school {row[0]})",
                                    hint="add --rotate to issue it a new token; the old one "
                                         "stops working")
            if row is None:
                self._db.execute("INSERT INTO boxes (box_id, school_id, token_sha256, added_at) "
                                 "VALUES (?, ?, ?, ?)", (box_id, school_id, digest, utc_now()))
            else:
                self._db.execute("UPDATE boxes SET school_id = ?, token_sha256 = ? "
                                 "WHERE box_id = ?", (school_id, digest, box_id))
        return token

    def authenticate(self, box_id: Any, token: Any) -> BoxInfo | None:
        """The box, if ``token`` is its current token; None otherwise (never raises on input)."""
        if not isinstance(box_id, str) or not isinstance(token, str) \
                or len(token) > MAX_TOKEN_CHARS or not is_plain_id(box_id):
            return None
        row = self._read("SELECT school_id, token_sha256 FROM boxes WHERE box_id = ?",
                         (box_id,)).fetchone()
        stored = row[1] if row else _NO_BOX_DIGEST
        if not hmac.compare_digest(token_digest(token), stored) or row is None:
            return None
        return BoxInfo(box_id, row[0])

    def box(self, box_id: str) -> BoxInfo | None:
        row = self._read("SELECT school_id FROM boxes WHERE box_id = ?", (box_id,)).fetchone()
        return BoxInfo(box_id, row[0]) if row else None

    def touch(self, box_id: str) -> None:
        """Note that the box was heard from now."""
        with self._write():
            self._db.execute("UPDATE boxes SET last_seen = ? WHERE box_id = ?",
                             (utc_now(), box_id))

    def record_report(self, box_id: str, models: Any, health: Any) -> None:
        """Keep the box's latest report (installed model versions, health), validated."""
        models, health = parse_report(models, health)
        with self._write():
            cursor = self._db.execute(
                "UPDATE boxes SET models = ?, health = ?, last_seen = ? WHERE box_id = ?",
                (json.dumps(models, sort_keys=True), json.dumps(health, sort_keys=True),
                 utc_now(), box_id))
            if cursor.rowcount == 0:
                raise TrainingError(f"box {box_id} is not registered",
                                    hint="add it with 'chalkbox train fleet add-box'")

    def list_boxes(self) -> list[BoxStatus]:
        rows = self._read(
            "SELECT b.box_id, b.school_id, b.added_at, b.last_seen, b.models, b.health, "
            "(SELECT COUNT(*) FROM records r WHERE r.box_id = b.box_id) "
            "FROM boxes b ORDER BY b.box_id").fetchall()
        return [BoxStatus(box_id=r[0], school_id=r[1], added_at=r[2], last_seen=r[3],
                          models=json.loads(r[4]), health=json.loads(r[5]), records=r[6])
                for r in rows]

    # --- plumbing -----------------------------------------------------------------
    def _read(self, query: str, args: tuple = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(query, args)
        except sqlite3.Error as exc:
            raise TrainingError(f"cannot read the fleet registry in {self.path}: {exc}",
                                hint="check the central store's file and free space")

    def _write(self) -> "_Transaction":
        return _Transaction(self._db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back (and reported as TrainingError) on failure."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self._db, self._path = db, path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TrainingError(f"cannot write the fleet registry in {self._path}: {exc}",
                                hint="another process may hold the database; try again")

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return False
            except sqlite3.Error as error:
                exc_type, exc = type(error), error
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if issubclass(exc_type, sqlite3.Error):
            raise TrainingError(f"writing the fleet registry in {self._path} failed and was "
                                f"rolled back: {exc}", hint="check free space and permissions")
        return False
