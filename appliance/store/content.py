"""Class content on the box: exercises and the FAQ knowledge base (TinyDB).

Both tables are replaced in one durable write, so a crash or a request during an
import sees the old content or the new, never a box without exercises.

Every graded answer looks its exercise up, and the file holds the whole knowledge base
(2,000 FAQ answers are about a megabyte of JSON): parsing it per request cost more CPU
than the model run. So the parsed content is kept in memory while the file's identity
(inode, size, mtime) is unchanged. A replace is an atomic rename, which gives the file a
new inode, so every process (web workers, the huey worker, the CLI) sees a teacher's
import on its next read.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from ..content import Exercise, FaqEntry
from .storage import AtomicJSONStorage


def _table(items) -> dict[str, dict]:
    """TinyDB's on-disk shape of a table: {"1": doc, "2": doc, ...}."""
    return {str(number): item.to_dict() for number, item in enumerate(items, 1)}


class _Parsed:
    """The content file's tables as objects, built once per version of the file."""

    def __init__(self, data: dict | None):
        data = data or {}
        self.exercises = [Exercise.from_dict(d) for d in _rows(data.get("exercises"))]
        self.faq = [FaqEntry.from_dict(d) for d in _rows(data.get("faq"))]
        self.by_id: dict[str, Exercise] = {}
        for exercise in self.exercises:
            self.by_id.setdefault(exercise.id, exercise)  # as TinyDB's get: the first


def _rows(table: dict | None) -> list[dict]:
    return [table[key] for key in sorted(table, key=int)] if table else []


class ContentStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: tuple[tuple, _Parsed] | None = None

    def _content(self) -> _Parsed:
        try:
            stat = os.stat(self.path)
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            key = None
        with self._lock:
            if self._cached is None or self._cached[0] != key or key is None:
                self._cached = (key, _Parsed(AtomicJSONStorage(self.path).read()))
            return self._cached[1]

    def replace(self, exercises: list[Exercise], faq: list[FaqEntry]) -> None:
        AtomicJSONStorage(self.path).write({"exercises": _table(exercises), "faq": _table(faq)})
        with self._lock:  # this process re-reads at once, whatever the file's stat says
            self._cached = None

    def exercises(self) -> list[Exercise]:
        return list(self._content().exercises)

    def exercise(self, exercise_id: str) -> Exercise | None:
        return self._content().by_id.get(exercise_id)

    def faq(self) -> list[FaqEntry]:
        return list(self._content().faq)
