"""Recipes: the data, split and settings that make one model, as one call."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from appliance.content import demo_content_dir, read_labelled_content
from appliance.inference.pairs import labelled_grade_pairs

from .data.splits import split_by_group
from .finetune import FinetuneConfig, finetune

log = logging.getLogger(__name__)


def read_grading_data(data_dir: Path | None, fmt: str = "content"):
    """(exercises, labelled answers) from a teacher content dir or a SemEval split, as read
    (no cleaning): for evaluation and benchmarks that must see the split as published."""
    if fmt == "semeval":
        from .data.semeval import read_semeval

        data = read_semeval(Path(data_dir))
        return data.exercises, data.answers
    return read_labelled_content(data_dir or demo_content_dir())


DATA_KINDS = {"content": "content", "semeval": "semeval", "teacher": "teacher_file",
              "store": "store"}


def grading_dataset(data_paths, data_format: str = "content", *, eval_fraction: float = 0.15,
                    seed: int = 42, use_weak: bool = False, labels=None,
                    calibration_fraction: float = 0.0):
    """The cleaned, label-resolved, stratified, snapshot-hashed dataset (training.data.dataset)
    from one or more sources of one format (default: the demo content)."""
    from .data.dataset import DataSource, build_grading_dataset

    if isinstance(data_paths, (str, Path)):
        data_paths = [data_paths]
    paths = [Path(p) for p in (data_paths or [demo_content_dir()])]
    sources = [DataSource(DATA_KINDS[data_format], p) for p in paths]
    extra = {"labels": tuple(labels)} if labels else {}
    return build_grading_dataset(*sources, use_weak=use_weak, seed=seed,
                                 eval_fraction=eval_fraction,
                                 calibration_fraction=calibration_fraction, **extra)


def train_grader(data_dir, out_dir: Path, *, eval_fraction: float = 0.15, seed: int = 42,
                 data_format: str = "content", use_weak: bool = False,
                 calibration_fraction: float = 0.0, **settings) -> dict[str, float]:
    """Fine-tune a grader on a content dir, a SemEval split, teacher files or the central
    store, holding out whole questions (stratified by label) for validation. The data report
    (what was read, dropped, resolved) is written beside the model as data-report.json.
    ``labels`` in ``settings`` (e.g. SemEval's 3-way set) is the model's label set and what
    the readers accept. ``calibration_fraction``: answers of the training questions held
    out to fit the temperature on (else it is fitted on the held-out questions)."""
    dataset = grading_dataset(data_dir, data_format, eval_fraction=eval_fraction, seed=seed,
                              use_weak=use_weak, labels=settings.get("labels"),
                              calibration_fraction=calibration_fraction)
    config = FinetuneConfig(output_dir=Path(out_dir), seed=seed,
                            dataset_snapshot=dataset.snapshot, **settings)
    train = labelled_grade_pairs(dataset.exercises, dataset.train, config.input_format)
    evaluation = labelled_grade_pairs(dataset.exercises, dataset.evaluation, config.input_format)
    calibration = labelled_grade_pairs(dataset.exercises, dataset.calibration,
                                       config.input_format)
    if calibration_fraction and not calibration[0]:
        log.warning("--calibration-fraction %s held out no answer (too little data); the "
                    "temperature is fitted on the validation questions", calibration_fraction)
    metrics = finetune(config, train, evaluation if evaluation[0] else None,
                       calibration if calibration[0] else None)
    Path(out_dir, "data-report.json").write_text(
        json.dumps(dataset.report, indent=2, sort_keys=True, default=str) + "\n")
    return metrics


MATCH_LABELS = ("other", "match")


def _words(text: str) -> set[str]:
    return {w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split()
            if len(w) > 3}


def faq_match_pairs(entries, negatives: int = 3, seed: int = 13):
    """(pairs, labels) for the "match" task from a FAQ: each question with its own answer
    (match) and with ``negatives`` other answers (other): the hardest first (the answers
    sharing most words with the question, e.g. another colour question), then random ones,
    so the matcher learns to tell near misses apart, deterministically."""
    import random

    rng = random.Random(seed)
    pairs, labels = [], []
    for index, entry in enumerate(entries):
        pairs.append((entry.question, entry.answer))
        labels.append("match")
        words = _words(entry.question)
        others = [e for i, e in enumerate(entries) if i != index]
        hard = sorted(others, key=lambda e: -len(words & _words(e.question + " " + e.answer)))
        chosen = hard[: max(1, negatives - 1)]
        rest = [e for e in others if e not in chosen]
        chosen += rng.sample(rest, min(negatives - len(chosen), len(rest)))
        for other in chosen:
            pairs.append((entry.question, other.answer))
            labels.append("other")
    return pairs, labels


def train_matcher(faq_path: Path | None, out_dir: Path, *, seed: int = 42,
                  eval_fraction: float = 0.15, **settings) -> dict[str, float]:
    """Fine-tune the cross-encoder that decides whether a FAQ answer answers a question."""
    from appliance.content import read_faq

    entries = read_faq(faq_path or demo_content_dir() / "faq.csv")
    settings.setdefault("model_id", "match")
    config = FinetuneConfig(output_dir=Path(out_dir), seed=seed, task="match",
                            labels=MATCH_LABELS, positive_label="match",
                            input_format="question|answer", **settings)
    train_entries, eval_entries = split_by_group(entries, lambda e: e.id, eval_fraction, seed)
    return finetune(config, faq_match_pairs(train_entries),
                    faq_match_pairs(eval_entries) if eval_entries else None)


def train_wikiqa_matcher(data_dir: Path, out_dir: Path, *, seed: int = 42,
                         eval_fraction: float = 0.0, **settings) -> dict[str, float]:
    """The "match" cross-encoder on WikiQA (question, candidate sentence) pairs; whole
    questions are held out for validation when ``eval_fraction`` > 0."""
    from .data.wikiqa import match_pairs, read_wikiqa

    groups = read_wikiqa(Path(data_dir)).groups
    settings.setdefault("model_id", "match")
    config = FinetuneConfig(output_dir=Path(out_dir), seed=seed, task="match",
                            labels=MATCH_LABELS, positive_label="match",
                            input_format="question|answer", **settings)
    train_groups, eval_groups = split_by_group(groups, lambda g: g.question_id, eval_fraction,
                                               seed)
    return finetune(config, match_pairs(train_groups),
                    match_pairs(eval_groups) if eval_groups else None)
