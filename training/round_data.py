"""A round's data: the snapshot it trains on (saved with the round) and the fixed evaluation set.

The snapshot is written into the round's ``snapshot/`` stage directory as JSON lines, so the
teacher and the student of one round train on exactly the same answers even when the round
resumes after a crash and the central store has grown in between.
"""
from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from appliance.content import Exercise, LabelledAnswer, read_labelled_content
from appliance.fsutil import atomic_write_text
from export.datasets import ReadReport, SemEvalData

from .errors import TrainingError

@dataclasses.dataclass
class RoundDataset:
    exercises: list[Exercise]
    train: list[LabelledAnswer]
    evaluation: list[LabelledAnswer]
    snapshot: str
    report: dict[str, Any]
    #: (question, reference, answer) of field answers no teacher labelled: the student learns
    #: them from the teacher's soft targets (distillation), never as gold.
    unlabelled: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def _is_semeval(path: Path) -> bool:
    return not (Path(path) / "exercises.csv").is_file()


def build(seed_data: Sequence[Path], store_path: Path | None, *, use_weak: bool = False,
          seed: int = 42, eval_fraction: float = 0.1) -> RoundDataset:
    """Seed data (SemEval split dirs, content dirs, teacher files) plus every labelled answer
    the boxes sent (teacher labels gold), cleaned, split by question, stratified, hashed."""
    from .data.dataset import DataSource, build_grading_dataset

    sources = [DataSource.detect(p) for p in seed_data]
    if store_path is not None and Path(store_path).is_file():
        sources.append(DataSource("store", Path(store_path)))
    if not sources:
        raise TrainingError("the round has no data: no seed data and no central store yet",
                            hint="give --seed-data, or let boxes sync first")
    dataset = build_grading_dataset(*sources, use_weak=use_weak, seed=seed,
                                    eval_fraction=eval_fraction)
    report = dict(dataset.report)
    field = [r for r in report.get("sources", []) if r.get("kind") == "store"]
    report["field_labels"] = sum(r.get("answers_read", 0) for r in field)
    report["labels_by_class"] = dict(collections.Counter(a.label for a in dataset.train))
    unlabelled = unlabelled_answers(store_path) if store_path else []
    report["unlabelled_field_answers"] = len(unlabelled)
    return RoundDataset(list(dataset.exercises), list(dataset.train), list(dataset.evaluation),
                        dataset.snapshot, report, unlabelled)


def unlabelled_answers(store_path: Path) -> list[tuple[str, str, str]]:
    """Answers from the boxes that no teacher has labelled, as the box graded them
    (question, the reference that decided, answer)."""
    if not Path(store_path).is_file():
        return []
    from .data.labels import graded_texts
    from .store import CentralStore

    with CentralStore(store_path) as store:
        return graded_texts(store.records(), kinds=("answer",), unlabelled_only=True)


def _lines(items) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in items)


def save(dataset: RoundDataset, directory: Path) -> None:
    directory = Path(directory)
    atomic_write_text(directory / "exercises.jsonl", _lines(e.to_dict() for e in dataset.exercises))
    atomic_write_text(directory / "train.jsonl", _lines(dataclasses.asdict(a) for a in dataset.train))
    atomic_write_text(directory / "validation.jsonl",
                      _lines(dataclasses.asdict(a) for a in dataset.evaluation))
    atomic_write_text(directory / "unlabelled.jsonl", _lines(list(t) for t in dataset.unlabelled))
    atomic_write_text(directory / "snapshot.json",
                      json.dumps({"snapshot": dataset.snapshot, "report": dataset.report},
                                 indent=2, sort_keys=True, default=str) + "\n")


def load(directory: Path) -> RoundDataset:
    directory = Path(directory)
    try:
        def rows(name):
            return [json.loads(line) for line in (directory / name).read_text().splitlines()
                    if line.strip()]
        meta = json.loads((directory / "snapshot.json").read_text())
        return RoundDataset([Exercise.from_dict(r) for r in rows("exercises.jsonl")],
                            [LabelledAnswer(**r) for r in rows("train.jsonl")],
                            [LabelledAnswer(**r) for r in rows("validation.jsonl")],
                            meta["snapshot"], meta.get("report", {}),
                            [tuple(r) for r in rows("unlabelled.jsonl")])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"the round's snapshot in {directory} cannot be read: {exc}",
                            hint="move the round directory aside and run the round again")


def evaluation_set(path: Path, limit: int | None = None) -> SemEvalData:
    """The fixed evaluation set: a SemEval split directory or a content dir (exercises.csv +
    answers.csv), as SemEvalData so export.evaluate scores it like any SemEval split."""
    path = Path(path)
    if _is_semeval(path):
        from .data.semeval import read_semeval

        data = read_semeval(path)
    else:
        exercises, answers = read_labelled_content(path)
        report = ReadReport(source=str(path), files_read=2, questions=len(exercises),
                            items_read=len(answers))
        data = SemEvalData(exercises, answers, report)
    return data.limited(limit)
