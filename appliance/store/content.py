"""Class content on the box: exercises and the FAQ knowledge base (TinyDB)."""
from __future__ import annotations

from pathlib import Path

from tinydb import Query, TinyDB

from ..content import Exercise, FaqEntry
from .storage import AtomicJSONStorage


class ContentStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _db(self) -> TinyDB:
        return TinyDB(self.path, storage=AtomicJSONStorage)

    def replace_exercises(self, exercises: list[Exercise]) -> None:
        db = self._db()
        db.drop_table("exercises")
        db.table("exercises").insert_multiple(e.to_dict() for e in exercises)

    def replace_faq(self, entries: list[FaqEntry]) -> None:
        db = self._db()
        db.drop_table("faq")
        db.table("faq").insert_multiple(e.to_dict() for e in entries)

    def exercises(self) -> list[Exercise]:
        return [Exercise.from_dict(d) for d in self._db().table("exercises").all()]

    def exercise(self, exercise_id: str) -> Exercise | None:
        found = self._db().table("exercises").get(Query().id == exercise_id)
        return Exercise.from_dict(found) if found else None

    def faq(self) -> list[FaqEntry]:
        return [FaqEntry.from_dict(d) for d in self._db().table("faq").all()]
