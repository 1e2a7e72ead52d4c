"""Teacher-authored labelled answers for training at the centre: CSV or JSONL.

One labelled answer per CSV row (UTF-8, header row) or JSONL line (one JSON object):
``exercise_id``, ``question``, ``reference``, ``answer``, ``label``; optionally ``subject``
and ``grade_band``; other columns/keys are ignored (a sheet's notes column). Labels are
``correct``/``incorrect``, any case. Repeat an exercise_id to add answers; ``question`` and
``reference`` may be left empty on its later rows, and a different non-empty ``reference``
adds another reference answer. See docs/formats.md, "Teacher-authored training data".

Bad input, all or nothing per file: a file that is missing, over ``MAX_FILE_BYTES``, not
UTF-8, empty, without the required columns, or without a single usable row is refused with
a :class:`TrainingError` naming the file and the problem. Otherwise a bad row is skipped
and counted by reason in the report (``malformed_row``, ``bad_exercise_id``,
``unknown_label``, ``missing_question``, ``missing_reference``, ``oversize_question``,
``oversize_reference``, ``exercise_conflict``: the same id with another question). Empty
and oversize *answers* are left to clean.py, which counts them with everyone else's.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from appliance.content import ID_RE, Exercise
from appliance.records import TEXT_FIELDS
from export.datasets import ReadReport

from ..errors import TrainingError
from .clean import normalize_text
from .labels import LABELS, SourcedAnswer

REQUIRED = ("exercise_id", "question", "reference", "answer", "label")
OPTIONAL = ("subject", "grade_band")
MAX_FILE_BYTES = 16 * 1024 * 1024
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMAT_HINT = ("one labelled answer per row with columns exercise_id, question, reference, "
               "answer, label (docs/formats.md, 'Teacher-authored training data')")


@dataclasses.dataclass
class TeacherFileData:
    exercises: list[Exercise]
    answers: list[SourcedAnswer]   # all from the "teacher" tier
    report: ReadReport


def read_teacher_file(path: Path, *, labels: Sequence[str] = LABELS) -> TeacherFileData:
    """Exercises and labelled answers of one ``.csv`` or ``.jsonl`` file (module docstring)."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TrainingError(f"{path}: not a teacher file (expected .csv or .jsonl)",
                            hint=FORMAT_HINT)
    text = _read_text(path)
    rows = _csv_rows(text, path) if kind == "csv" else _jsonl_rows(text, path)
    reader = _RowReader(path, tuple(label.casefold() for label in labels))
    for line, row in rows:
        reader.take(line, row)
    return reader.result()


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise TrainingError(f"{path} not found", hint="check the path")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TrainingError(f"{path} is {size // 1024 // 1024} MiB, over the "
                            f"{MAX_FILE_BYTES // 1024 // 1024} MiB limit",
                            hint="split it into several files")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path} is not UTF-8 text (byte {exc.start})",
                            hint="save the sheet as 'CSV UTF-8'") from None
    if not text.strip():
        raise TrainingError(f"{path} is empty", hint=FORMAT_HINT)
    return text


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    """(line, row as a mapping) per data row; None for a row that cannot be parsed."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().casefold() for name in next(reader)]
    except csv.Error as exc:
        raise TrainingError(f"{path} line 1: the header row cannot be read ({exc})",
                            hint=FORMAT_HINT) from None
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise TrainingError(f"{path} lacks column(s) {', '.join(missing)}; its header is "
                            f"{','.join(header)}", hint=FORMAT_HINT)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        if not row or row == [""]:
            continue  # a blank line
        yield reader.line_num, dict(zip(header, row)) if len(row) == len(header) else None


def _jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    # split on newlines only: str.splitlines would also cut at U+2028, which JSON allows
    # unescaped inside a string
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            row = None
        yield line, row if isinstance(row, dict) else None


class _RowReader:
    """Checks rows one at a time and keeps what is usable; skips are counted by reason."""

    def __init__(self, path: Path, labels: tuple[str, ...]):
        self.path = path
        self.labels = labels
        self.report = ReadReport(source=str(path), files_read=1)
        self.exercises: dict[str, dict[str, Any]] = {}
        self.answers: list[SourcedAnswer] = []
        self.rows = 0

    def take(self, line: int, row: Mapping[str, Any] | None) -> None:
        self.rows += 1
        where = f"{self.path.name} line {line}"
        fields = _string_fields(row)
        if fields is None:
            return self.report.skip_item("malformed_row", where)
        exercise_id, label = fields["exercise_id"].strip(), fields["label"].strip().casefold()
        if not ID_RE.match(exercise_id):
            return self.report.skip_item("bad_exercise_id", where)
        if label not in self.labels:
            return self.report.skip_item("unknown_label", where)
        reason = self._note_exercise(exercise_id, fields)
        if reason:
            return self.report.skip_item(reason, where)
        self.answers.append(SourcedAnswer(exercise_id, fields["answer"], label, "teacher"))

    def _note_exercise(self, exercise_id: str, fields: Mapping[str, str]) -> str | None:
        """Defines or extends the row's exercise; the skip reason if the row cannot."""
        question, reference = normalize_text(fields["question"]), normalize_text(fields["reference"])
        if len(question) > TEXT_FIELDS["question"]:
            return "oversize_question"
        if len(reference) > TEXT_FIELDS["reference"]:
            return "oversize_reference"
        seen = self.exercises.get(exercise_id)
        if seen is None:
            if not question:
                return "missing_question"
            if not reference:
                return "missing_reference"
            self.exercises[exercise_id] = {
                "question": question, "references": {reference: None},
                "subject": normalize_text(fields.get("subject", ""))[:40],
                "grade_band": normalize_text(fields.get("grade_band", ""))[:20]}
            return None
        if question and question != seen["question"]:
            return "exercise_conflict"
        if reference:
            seen["references"].setdefault(reference, None)
        return None

    def result(self) -> TeacherFileData:
        if not self.rows:
            raise TrainingError(f"{self.path} holds a header but no rows", hint=FORMAT_HINT)
        if not self.answers:
            reasons = ", ".join(f"{n} {reason}" for reason, n in self.report.skipped.most_common())
            first = ", ".join(f"{reason} at {where}"
                              for reason, where in self.report.first_skipped.items())
            raise TrainingError(f"{self.path} has no usable row: {self.rows} skipped ({reasons}); "
                                f"first: {first}", hint=FORMAT_HINT)
        self.report.questions, self.report.items_read = len(self.exercises), len(self.answers)
        exercises = [Exercise(id=eid, subject=d["subject"], grade_band=d["grade_band"],
                              question=d["question"], reference_answers=tuple(d["references"]))
                     for eid, d in self.exercises.items()]
        return TeacherFileData(exercises, self.answers, self.report)


def _string_fields(row: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The row's known fields as strings ("" when absent, except required exercise_id,
    answer and label); None when the row is not usable as such."""
    if row is None:
        return None
    fields = {}
    for name in REQUIRED + OPTIONAL:
        value = row.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            return None
        fields[name] = value
    if not all(name in row for name in ("exercise_id", "answer", "label")):
        return None
    return fields
