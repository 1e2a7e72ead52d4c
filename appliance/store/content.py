"""Class content on the box: exercises and the FAQ knowledge base (TinyDB).

Both tables are replaced in one durable write, so a crash or a request during an
import sees the old content or the new, never a box without exercises.
"""
from __future__ import annotations

from pathlib import Path

from tinydb import Query, TinyDB

from ..content import Exercise, FaqEntry
from .storage import AtomicJSONStorage


def _table(items) -> dict[str, dict]:
    """TinyDB's on-disk shape of a table: {"1": doc, "2": doc, ...}."""
    return {str(number): item.to_dict() for number, item in enumerate(items, 1)}


class ContentStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _db(self) -> TinyDB:
        return TinyDB(self.path, storage=AtomicJSONStorage)

    def replace(self, exercises: list[Exercise], faq: list[FaqEntry]) -> None:
        AtomicJSONStorage(self.path).write({"exercises": _table(exercises), "faq": _table(faq)})

    def exercises(self) -> list[Exercise]:
        return [Exercise.from_dict(d) for d in self._db().table("exercises").all()]

    def exercise(self, exercise_id: str) -> Exercise | None:
        found = self._db().table("exercises").get(Query().id == exercise_id)
        return Exercise.from_dict(found) if found else None

    def faq(self) -> list[FaqEntry]:
        return [FaqEntry.from_dict(d) for d in self._db().table("faq").all()]
