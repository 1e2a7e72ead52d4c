"""SemEval-2013 Task 7 (Student Response Analysis) XML for training: exercises + labelled answers.

One XML file per question: ``questionText``, ``referenceAnswers/referenceAnswer`` (several in
Beetle, with a ``category``: BEST, GOOD, MINIMAL, KEYWORD) and ``studentAnswers/studentAnswer``
with ``accuracy="correct"|"incorrect"`` (the 2-way labels; pass ``labels`` for 3- or 5-way
data). See ../shared/datasets/README.md.

The parsing itself is in ``export/datasets.py``, so that ``chalkbox export evaluate`` (which
may not import training) reads the data exactly as training does; this module is the training
side's entry point and turns its errors into :class:`TrainingError`.

What comes out (``appliance.content`` types, the same the teacher CSV gives):
``Exercise(id=question id, subject="<corpus>/<module>", grade_band="3-6" for sciEntsBank and
"9-12" for beetle, question, reference_answers=all of them, best category first, duplicates
dropped)`` and ``LabelledAnswer(exercise_id, answer, label)``. Malformed files, files without a
reference answer, duplicate question ids and answers with an unknown label or no text are
skipped and counted by reason in the report; a path with no XML files, or none usable, is a
TrainingError.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from export import datasets as _core
from export.datasets import (  # noqa: F401  (re-exported)
    GRADE_BANDS,
    SEMEVAL_LABELS,
    ReadReport,
    SemEvalData,
    detect_corpus,
)

from ..errors import TrainingError


def read_semeval(path: Path, *, corpus: str | None = None,
                 labels: Sequence[str] = SEMEVAL_LABELS) -> SemEvalData:
    """Every question of one split directory (or one XML file): ``.exercises``, ``.answers``
    and ``.report`` (files read, answers read, skipped by reason). ``corpus``: ``sciEntsBank``
    or ``beetle``; by default taken from the path (a directory named after the corpus), else
    from each file (Beetle files carry ``qtype`` and reference categories)."""
    try:
        return _core.read_semeval(Path(path), corpus=corpus, labels=labels)
    except _core.DatasetError as exc:
        raise TrainingError(exc.message, hint=exc.hint) from None


def parse_semeval_question(data: bytes | str, *, corpus: str | None = None,
                           labels: Sequence[str] = SEMEVAL_LABELS, where: str = "xml"):
    """One question file's text -> (Exercise, [LabelledAnswer], report of skipped answers);
    a file that cannot be used at all is a TrainingError naming the reason."""
    report = ReadReport(source=where)
    try:
        exercise, answers = _core.parse_semeval_question(data, corpus=corpus, labels=labels,
                                                         where=where, report=report)
    except _core.SkipFile as skip:
        raise TrainingError(f"{where}: cannot use this SemEval question file ({skip})") from None
    report.files_read, report.questions, report.items_read = 1, 1, len(answers)
    return exercise, answers, report
