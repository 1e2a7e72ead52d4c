"""Who is who, on the box only: pseudonym -> class and nickname, and opt-outs.

Teachers see nicknames; records (and everything exported) carry only the
pseudonym. The roster never leaves the box: the export uses it to drop the
records of students who opted out and to scrub their names from free text.
"""
from __future__ import annotations

import threading
from pathlib import Path

from tinydb import Query, TinyDB

from ..fsutil import file_lock
from .storage import AtomicJSONStorage


class Roster:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _file_lock(self):
        """Web workers, the CLI and the worker all write the roster: one at a time."""
        return file_lock(self.path.with_name(self.path.name + ".lock"))

    def _db(self) -> TinyDB:
        return TinyDB(self.path, storage=AtomicJSONStorage)

    def remember(self, student: str, class_id: str, nickname: str) -> None:
        """Note a student the first time this process sees them (one write, then cached)."""
        if student in self._known:
            return
        with self._lock, self._file_lock():
            table = self._db().table("students")
            if not table.contains(Query().student == student):
                table.insert({"student": student, "class_id": class_id, "nickname": nickname,
                              "opted_out": False})
            self._known.add(student)

    def set_opt_out(self, student: str, opted_out: bool) -> bool:
        with self._lock, self._file_lock():
            return bool(self._db().table("students").update({"opted_out": opted_out},
                                                             Query().student == student))

    def opted_out(self) -> set[str]:
        return {d["student"] for d in self._db().table("students").all() if d.get("opted_out")}

    def nicknames(self) -> set[str]:
        return {d["nickname"] for d in self._db().table("students").all() if d.get("nickname")}
