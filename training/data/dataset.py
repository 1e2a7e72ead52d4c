"""The grading dataset, as one call: read every source, clean, resolve labels, split, hash.

``build_grading_dataset(*sources, use_weak=False, seed=42, eval_fraction=0.15)``:

1. Read each source (:class:`DataSource`: a SemEval split, a content dir, a teacher CSV/JSONL
   file, a central store) into exercises and answers labelled with their tier (labels.py).
2. Merge exercises by id, sources in the order given: the first to define an id fixes its
   question; a later one with the same question adds its references; a later one with
   another question is a collision, and that source's answers to it are skipped
   (``exercise_conflict``) rather than graded against the wrong question.
3. Clean (clean.py), then resolve labels (labels.py).
4. Split with :func:`stratified_group_split`, grouped by *question text* (case and
   punctuation folded), so a question that two sources file under different ids still
   lands on one side.
5. :func:`snapshot_id` over every example and its side: the same data split the same way
   is the same snapshot, whatever the order it was read in.

Nothing here writes anything; a source that cannot be read at all stops the build with its
TrainingError (a half-read dataset is never trained on).
"""
from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any, Iterable, Sequence

from appliance.content import Exercise, LabelledAnswer, read_labelled_content
from appliance.errors import FormatError

from ..errors import TrainingError
from .clean import (MAX_ANSWER_CHARS, NEAR_DUPLICATE_JACCARD, canonical_text, clean_answers,
                    clean_exercises, normalize_text)
from .labels import LABELS, SourcedAnswer, examples_from_records, resolve_labels, source_rank, sourced
from .splits import snapshot_id, stratified_group_split, stratified_sample_split

KINDS = ("semeval", "content", "teacher_file", "store")
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SOURCE_HINT = ("give a SemEval split dir (*.xml), a content dir (exercises.csv + answers.csv), "
               "a teacher .csv/.jsonl file or a central store (.db)")


@dataclasses.dataclass(frozen=True)
class DataSource:
    kind: str
    path: Path

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TrainingError(f"unknown data source kind {self.kind!r}; expected one of "
                                f"{', '.join(KINDS)}", hint=SOURCE_HINT)
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def detect(cls, path: Path | str) -> "DataSource":
        """The kind of source a path is, from what it holds (see SOURCE_HINT)."""
        path = Path(path)
        if path.is_dir():
            if (path / "exercises.csv").is_file() and (path / "answers.csv").is_file():
                return cls("content", path)
            if next(path.rglob("*.xml"), None) is not None:
                return cls("semeval", path)
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix in (".csv", ".jsonl", ".ndjson"):
                return cls("teacher_file", path)
            if suffix == ".xml":
                return cls("semeval", path)
            if suffix in STORE_SUFFIXES:
                return cls("store", path)
        else:
            raise TrainingError(f"{path} not found", hint=SOURCE_HINT)
        raise TrainingError(f"cannot tell what kind of training data {path} is", hint=SOURCE_HINT)


@dataclasses.dataclass(frozen=True)
class GradingDataset:
    exercises: list[Exercise]          # those with at least one answer kept
    train: list[LabelledAnswer]
    evaluation: list[LabelledAnswer]   # whole questions never in ``train``
    snapshot: str                      # "ds-<16 hex>", for the checkpoint's dataset_snapshot
    report: dict[str, Any]
    calibration: list[LabelledAnswer] = dataclasses.field(default_factory=list)
    # ^ answers of training questions held out to fit the temperature (calibration_fraction)


@dataclasses.dataclass
class _Read:
    exercises: list[Exercise]
    answers: list[SourcedAnswer]
    report: dict[str, Any]


def read_source(source: DataSource, labels: Sequence[str] = LABELS) -> _Read:
    """One source's exercises and tier-labelled answers, and what its reader counted.
    ``labels``: the task's label set; answers labelled otherwise are skipped and counted
    (a content dir is the team's own data and is refused instead)."""
    if source.kind == "semeval":
        from .semeval import read_semeval

        data = read_semeval(source.path, labels=labels)
        return _Read(data.exercises, sourced(data.answers, "dataset"), data.report.to_dict())
    if source.kind == "content":
        try:
            exercises, answers = read_labelled_content(source.path)
        except FormatError as exc:
            raise TrainingError(exc.message, hint=exc.hint) from None
        unknown = sorted({a.label for a in answers} - set(labels))
        if unknown:
            raise TrainingError(f"{source.path}/answers.csv has labels {unknown} outside the "
                                f"task's {list(labels)}",
                                hint="fix the labels or pass the label set with --labels")
        return _Read(exercises, sourced(answers, "teacher"),
                     {"source": str(source.path), "questions": len(exercises),
                      "answers_read": len(answers), "answers_skipped": 0, "skipped": {}})
    if source.kind == "teacher_file":
        from .teacher_files import read_teacher_file

        data = read_teacher_file(source.path, labels=labels)
        return _Read(data.exercises, data.answers, data.report.to_dict())
    if not source.path.is_file():
        raise TrainingError(f"the central store {source.path} not found", hint=SOURCE_HINT)
    from ..store import CentralStore

    with CentralStore(source.path) as store:
        data = examples_from_records(store.records(), source=str(source.path), labels=labels)
    return _Read(data.exercises, data.answers, data.report.to_dict())


def build_grading_dataset(*sources: DataSource | Path | str, use_weak: bool = False,
                          seed: int = 42, eval_fraction: float = 0.15,
                          max_chars: int = MAX_ANSWER_CHARS,
                          near_duplicate: float | None = NEAR_DUPLICATE_JACCARD,
                          names: Iterable[str] = (),
                          labels: Sequence[str] = LABELS,
                          calibration_fraction: float = 0.0) -> GradingDataset:
    """Every source read, merged, cleaned, labels resolved, split and hashed (module
    docstring). Paths are taken through :meth:`DataSource.detect`. ``labels``: the task's
    label set (2-way by default; SemEval's 3- and 5-way sets work the same way).
    ``calibration_fraction``: answers of the training questions (stratified by label, not
    whole questions) held out to fit the temperature on."""
    if not sources:
        raise TrainingError("no training data given", hint=SOURCE_HINT)
    reads = []
    for source in sources:
        source = source if isinstance(source, DataSource) else DataSource.detect(source)
        read = read_source(source, labels)
        read.report["kind"] = source.kind
        reads.append(read)
    exercises, answers = _merge(reads)
    exercises = clean_exercises(exercises)
    kept, cleaning = clean_answers(exercises, answers, max_chars=max_chars,
                                   near_duplicate=near_duplicate, names=names, rank=source_rank)
    resolved, resolution = resolve_labels(kept, cleaning.conflicts, use_weak=use_weak)
    report = {"sources": [read.report for read in reads], "cleaning": cleaning.to_dict(),
              "labels": resolution.to_dict()}
    if not resolved:
        raise TrainingError("no labelled answer is left after cleaning and label resolution: "
                            f"{report['cleaning']}, {report['labels']}",
                            hint="check the sources' reports; weak labels need use_weak=True")
    by_id = {e.id: e for e in exercises}
    question_of = {e.id: canonical_text(e.question) for e in exercises}
    train, evaluation = stratified_group_split(resolved, lambda a: question_of[a.exercise_id],
                                               lambda a: a.label, eval_fraction, seed)
    train, calibration = stratified_sample_split(train, lambda a: a.label,
                                                 calibration_fraction, seed)
    used = {a.exercise_id for a in resolved}
    sides = (("train", train), ("evaluation", evaluation), ("calibration", calibration))
    snapshot = snapshot_id(_example(by_id[a.exercise_id], a, side)
                           for side, items in sides for a in items)
    report["split"] = _split_report(train, evaluation, question_of, seed, eval_fraction)
    if calibration:
        report["split"]["calibration_fraction"] = calibration_fraction
        report["split"]["calibration"] = _side(calibration, question_of)
    report["snapshot"] = snapshot
    return GradingDataset([e for e in exercises if e.id in used], train, evaluation, snapshot,
                          report, calibration)


def _merge(reads: list[_Read]) -> tuple[list[Exercise], list[SourcedAnswer]]:
    """Exercises merged by id (module docstring, step 2) and the answers still usable."""
    merged: dict[str, Exercise] = {}
    answers: list[SourcedAnswer] = []
    for read in reads:
        clashing = set()
        for exercise in read.exercises:
            seen = merged.get(exercise.id)
            if seen is None:
                merged[exercise.id] = exercise
            elif normalize_text(seen.question) != normalize_text(exercise.question):
                clashing.add(exercise.id)
            else:
                references = dict.fromkeys(seen.reference_answers + exercise.reference_answers)
                merged[exercise.id] = dataclasses.replace(seen,
                                                          reference_answers=tuple(references))
        dropped = [a for a in read.answers if a.exercise_id in clashing]
        if dropped:
            read.report["exercise_conflicts"] = {"exercises": sorted(clashing),
                                                 "answers_skipped": len(dropped)}
        answers.extend(a for a in read.answers if a.exercise_id not in clashing)
    return list(merged.values()), answers


def _example(exercise: Exercise, answer: LabelledAnswer, side: str) -> dict[str, Any]:
    return {"exercise_id": exercise.id, "question": exercise.question,
            "references": list(exercise.reference_answers), "answer": answer.answer,
            "label": answer.label, "split": side}


def _side(items, question_of) -> dict[str, Any]:
    labels = collections.Counter(a.label for a in items)
    return {"answers": len(items), "questions": len({question_of[a.exercise_id] for a in items}),
            "labels": dict(sorted(labels.items()))}


def _split_report(train, evaluation, question_of, seed, eval_fraction) -> dict[str, Any]:
    return {"seed": seed, "eval_fraction": eval_fraction, "grouped_by": "question text",
            "train": _side(train, question_of), "evaluation": _side(evaluation, question_of)}
