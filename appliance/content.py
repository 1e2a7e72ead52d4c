"""Teacher-authored content: exercises, labelled example answers and the FAQ.

The format is plain CSV with a header row, so a teacher can write it in any
spreadsheet (docs/formats.md). ``exercises.csv``: id, subject, grade_band,
question, reference_answer (repeat a row with the same id to add another
reference answer). ``answers.csv``: exercise_id, answer, label. ``faq.csv``: id,
subject, grade_band, question, answer. Reading is all or nothing: a bad row is
refused with its line number and the field.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path
from typing import Any, Iterable

from . import validate as v
from .errors import FormatError

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_CSV_BYTES = 8 * 1024 * 1024
LABELS = ("correct", "incorrect")


@dataclasses.dataclass(frozen=True)
class Exercise:
    id: str
    subject: str
    grade_band: str
    question: str
    reference_answers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reference_answers": list(self.reference_answers)}

    @classmethod
    def from_dict(cls, data: Any) -> "Exercise":
        data = v.require_mapping(data, "exercise")
        return cls(id=_id(data, "id"), subject=v.text(data, "subject", max_len=40),
                   grade_band=v.text(data, "grade_band", max_len=20),
                   question=v.text(data, "question", max_len=2000),
                   reference_answers=tuple(v.string_list(data, "reference_answers", max_items=10,
                                                         max_len=4000)))


@dataclasses.dataclass(frozen=True)
class LabelledAnswer:
    exercise_id: str
    answer: str
    label: str


@dataclasses.dataclass(frozen=True)
class FaqEntry:
    id: str
    subject: str
    grade_band: str
    question: str
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FaqEntry":
        data = v.require_mapping(data, "faq entry")
        return cls(id=_id(data, "id"), subject=v.text(data, "subject", max_len=40),
                   grade_band=v.text(data, "grade_band", max_len=20),
                   question=v.text(data, "question", max_len=2000),
                   answer=v.text(data, "answer", max_len=4000))


def _id(data: Any, field: str) -> str:
    value = v.text(data, field, max_len=64)
    if not ID_RE.match(value):
        raise FormatError(f"'{field}' may hold only letters, digits, '-', '_' and '.', got {value!r}",
                          field=field)
    return value


def _rows(source: Path | str, columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; refuses a file without the expected header."""
    if isinstance(source, Path):
        if not source.is_file():
            raise FormatError(f"{source} not found", hint="check the path")
        if source.stat().st_size > MAX_CSV_BYTES:
            raise FormatError(f"{source} is over {MAX_CSV_BYTES // 1024 // 1024} MiB")
        try:
            text = source.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise FormatError(f"{source} is not UTF-8 text", hint="save the sheet as CSV UTF-8")
        name = source.name
    else:
        text, name = source, "csv"
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise FormatError(f"{name} lacks column(s) {', '.join(missing)}; expected header: "
                          f"{','.join(columns)}", field=missing[0])
    try:
        for row in reader:
            if None in row or any(val is None for val in row.values()):
                raise FormatError(f"{name} line {reader.line_num}: wrong number of fields")
            yield reader.line_num, row
    except csv.Error as exc:
        raise FormatError(f"{name} line {reader.line_num}: {exc}")


def _name(source: Path | str, default: str) -> str:
    """How to name a source in an error: its path, never its contents."""
    return str(source) if isinstance(source, Path) else default


def _at(name: str, line: int, exc: FormatError) -> FormatError:
    return FormatError(f"{name} line {line}: {exc.message}", field=exc.field)


def read_exercises(source: Path | str) -> list[Exercise]:
    by_id: dict[str, dict[str, Any]] = {}
    for line, row in _rows(source, ("id", "subject", "grade_band", "question", "reference_answer")):
        try:
            exercise = Exercise.from_dict({**row, "reference_answers": [row["reference_answer"]]})
        except FormatError as exc:
            raise _at(_name(source, "exercises.csv"), line, exc)
        seen = by_id.get(exercise.id)
        if seen is None:
            by_id[exercise.id] = exercise.to_dict()
        elif seen["question"] != exercise.question:
            raise FormatError(f"{_name(source, 'exercises.csv')} line {line}: exercise "
                              f"{exercise.id!r} appears twice with "
                              "different questions", field="id")
        else:
            seen["reference_answers"].extend(exercise.reference_answers)
    if not by_id:
        raise FormatError(f"{_name(source, 'exercises.csv')} holds no exercises")
    return [Exercise.from_dict(d) for d in by_id.values()]


def read_answers(source: Path | str, exercise_ids: Iterable[str] | None = None) -> list[LabelledAnswer]:
    known = set(exercise_ids) if exercise_ids is not None else None
    answers = []
    for line, row in _rows(source, ("exercise_id", "answer", "label")):
        try:
            exercise_id = _id(row, "exercise_id")
            answer = v.text(row, "answer", max_len=2000)
            label = v.choice(row, "label", LABELS)
        except FormatError as exc:
            raise _at(_name(source, "answers.csv"), line, exc)
        if known is not None and exercise_id not in known:
            raise FormatError(f"{_name(source, 'answers.csv')} line {line}: unknown exercise_id {exercise_id!r}",
                              field="exercise_id")
        answers.append(LabelledAnswer(exercise_id, answer, label))
    return answers


def read_faq(source: Path | str) -> list[FaqEntry]:
    entries, seen = [], set()
    for line, row in _rows(source, ("id", "subject", "grade_band", "question", "answer")):
        try:
            entry = FaqEntry.from_dict(row)
        except FormatError as exc:
            raise _at(_name(source, "faq.csv"), line, exc)
        if entry.id in seen:
            raise FormatError(f"{_name(source, 'faq.csv')} line {line}: duplicate id {entry.id!r}", field="id")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def read_labelled_content(content_dir: Path) -> tuple[list[Exercise], list[LabelledAnswer]]:
    """exercises.csv + answers.csv from one directory: the grading examples it holds."""
    content_dir = Path(content_dir)
    for name in ("exercises.csv", "answers.csv"):
        if not (content_dir / name).is_file():
            raise FormatError(f"{content_dir} has no {name}",
                              hint="give a directory with exercises.csv and answers.csv")
    exercises = read_exercises(content_dir / "exercises.csv")
    answers = read_answers(content_dir / "answers.csv", [e.id for e in exercises])
    if not answers:
        raise FormatError(f"{content_dir / 'answers.csv'} holds no labelled answers")
    return exercises, answers


def demo_content_dir() -> Path:
    """The demo exercises, answers and FAQ shipped with Chalkbox."""
    return Path(__file__).parent / "demo_content"
