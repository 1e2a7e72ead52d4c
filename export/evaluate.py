"""Evaluation on real datasets (SemEval-2013 Task 7, WikiQA), one implementation for both CLIs.

Why it lives here. ``chalkbox export evaluate`` measures a verified bundle through the box's own
``OnnxModel`` and may not import ``training`` (appliance <- export <- training), while
``chalkbox train evaluate`` measures a PyTorch checkpoint. Both must print the same metrics,
computed by the same code, so that code sits in the lower of the two layers that need it: here.
The pieces: ``export/datasets.py`` holds

- the dataset readers' core: SemEval-2013 Task 7 XML and WikiQA (stdlib + ``appliance.content``
  types; pure: a path in, ``Exercise``/``LabelledAnswer`` or ``QAGroup`` items out, with a
  :class:`ReadReport` of what was read and what was skipped for which reason);
- ``export/metrics.py``: the metrics, as pure functions over labels, probabilities and
  rankings (scikit-learn, imported inside the functions that use it);
- this module, :func:`evaluate_model`: anything with ``.manifest`` (a ``ModelManifest``) and
  ``.probabilities(pairs)``, so the box's ``OnnxModel`` and the centre's PyTorch adapter
  (``training/evaluate.py``) are measured identically.

``training`` re-uses all of it: ``training/data/semeval.py`` and ``training/data/wikiqa.py`` are
the training-facing readers (their errors are ``TrainingError``), ``training/evaluate.py`` adds
the PyTorch checkpoint adapter. Nothing here imports torch or training, so a bundle is evaluated
without torch. Not in ``appliance``: the box never reads these datasets and scikit-learn is not
one of its dependencies.
"""
from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from appliance.inference.pairs import grade_pair

from .datasets import FORMATS, DatasetError, SemEvalData, WikiQAData, _summary, load_dataset
from .errors import ExportError
from . import metrics as _metrics
from .metrics import classification_metrics, map_mrr

# --------------------------------------------------------------------------- a model on a dataset


def batched_probabilities(model, pairs: Sequence[tuple[str, str]], batch_size: int = 32
                          ) -> np.ndarray:
    """model.probabilities over many pairs, in batches of similar length (a batch pads every
    pair to its longest), returned in the pairs' order."""
    labels = len(model.manifest.labels)
    out = np.zeros((len(pairs), labels), dtype=np.float64)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        probs = np.asarray(model.probabilities([pairs[i] for i in rows]), dtype=np.float64)
        if probs.shape != (len(rows), labels):
            raise ExportError(f"the model returned probabilities of shape {probs.shape} for "
                              f"{len(rows)} pairs and {labels} labels")
        out[rows] = probs
    return out


def judge(manifest, rows: np.ndarray) -> tuple[str, float, int]:
    """The box's grading rule (appliance.inference.grade.grade_answer) on one answer's rows of
    probabilities, one per reference: the reference with the highest probability of the
    positive label decides; its most probable label is the grade. (label, confidence, index)."""
    positive = manifest.labels.index(manifest.positive_label)
    best = int(np.argmax(rows[:, positive]))
    row = rows[best]
    return manifest.labels[int(np.argmax(row))], float(row.max()), best


def _check_model(manifest, fmt: str, needed: Iterable[str]) -> None:
    if manifest.task == "embed":
        raise DatasetError(f"{manifest.name} is a sentence encoder (task embed); it has no labels "
                           "to evaluate", hint="evaluate a grade or match model")
    missing = [label for label in needed if label not in manifest.labels]
    if missing:
        raise DatasetError(f"{fmt} labels {', '.join(missing)} are not among the model's labels "
                           f"{', '.join(manifest.labels)}",
                           hint="evaluate a grader (correct/incorrect) on semeval, a 2-label "
                                "matcher on wikiqa")


def evaluate_model(model, data: SemEvalData | WikiQAData | Path | str, fmt: str, *,
                   limit: int | None = None, batch_size: int = 32) -> dict[str, Any]:
    """The metrics of ``model`` on a dataset (or a path to one) in format ``semeval`` or
    ``wikiqa``. ``model``: anything with ``.manifest`` and ``.probabilities(pairs)``."""
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}", hint="use --format semeval or wikiqa")
    if isinstance(data, (str, Path)):
        data = load_dataset(Path(data), fmt, model.manifest.labels)
    expected = SemEvalData if fmt == "semeval" else WikiQAData
    if not isinstance(data, expected):
        raise DatasetError(f"the data given is not {fmt} data")
    data = data.limited(limit)
    started = time.perf_counter()
    result = (_evaluate_semeval if fmt == "semeval" else _evaluate_wikiqa)(model, data, batch_size)
    manifest = model.manifest
    result.update({
        "format": fmt,
        "limit": limit,
        "seconds": round(time.perf_counter() - started, 3),
        "model": {"model_id": manifest.model_id, "version": manifest.version,
                  "task": manifest.task, "input_format": manifest.input_format,
                  "temperature": manifest.temperature},
        "data": data.report.to_dict(),
    })
    return result


def grade_answers(model, exercises, answers, batch_size: int = 32
                  ) -> tuple[list[tuple[str, float]], int]:
    """(label, confidence) for each answer, graded as the box grades it (every reference
    scored, :func:`judge` decides), in batches; and how many pairs that took."""
    manifest = model.manifest
    by_id = {e.id: e for e in exercises}
    pairs, spans = [], []
    for item in answers:
        exercise = by_id[item.exercise_id]
        start = len(pairs)
        pairs += [grade_pair(manifest.input_format, exercise.question, ref, item.answer)
                  for ref in exercise.reference_answers]
        spans.append((start, len(pairs)))
    probs = batched_probabilities(model, pairs, batch_size)
    return [judge(manifest, probs[start:end])[:2] for start, end in spans], len(pairs)


def _evaluate_semeval(model, data: SemEvalData, batch_size: int) -> dict[str, Any]:
    manifest = model.manifest
    _check_model(manifest, "semeval", sorted({a.label for a in data.answers}))
    by_id = {e.id: e for e in data.exercises}
    grades, n_pairs = grade_answers(model, data.exercises, data.answers, batch_size)
    truth = [item.label for item in data.answers]
    predicted = [label for label, _ in grades]
    confidences = [confidence for _, confidence in grades]
    result = classification_metrics(truth, predicted, confidences, manifest.labels)
    result.update({"n_pairs": n_pairs, "n_questions": len(by_id),
                   "slices": slice_metrics([by_id[a.exercise_id] for a in data.answers],
                                           truth, predicted, manifest.labels)})
    return result


SLICE_KEYS = ("subject", "grade_band")


def slice_metrics(exercises, truth, predicted, labels) -> dict[str, dict[str, dict[str, Any]]]:
    """Accuracy and macro-F1 per subject and per grade band (SemEval: subject is
    ``<corpus>/<module>``), so a new model that is better overall but worse for one
    module is visible before it is promoted."""
    slices: dict[str, dict[str, dict[str, Any]]] = {}
    for key in SLICE_KEYS:
        groups: dict[str, list[int]] = {}
        for i, exercise in enumerate(exercises):
            groups.setdefault(getattr(exercise, key), []).append(i)
        slices[key] = {
            name: {"n": len(rows),
                   "accuracy": _metrics.accuracy([truth[i] for i in rows],
                                                 [predicted[i] for i in rows]),
                   "macro_f1": _metrics.macro_f1([truth[i] for i in rows],
                                                 [predicted[i] for i in rows], labels)}
            for name, rows in sorted(groups.items())}
    return slices


def _evaluate_wikiqa(model, data: WikiQAData, batch_size: int) -> dict[str, Any]:
    manifest = model.manifest
    if len(manifest.labels) != 2:
        raise DatasetError(f"wikiqa needs a 2-label model; {manifest.name} has "
                           f"{len(manifest.labels)} labels", hint="evaluate a match model")
    _check_model(manifest, "wikiqa", [])
    positive = manifest.labels.index(manifest.positive_label)
    negative_label = manifest.labels[1 - positive]
    pairs = [(g.question, candidate) for g in data.groups for candidate, _ in g.candidates]
    p_pos = batched_probabilities(model, pairs, batch_size)[:, positive]
    gold = [label for g in data.groups for _, label in g.candidates]
    truth = [manifest.positive_label if y else negative_label for y in gold]
    predicted = [manifest.positive_label if p >= 0.5 else negative_label for p in p_pos]
    confidences = [float(p) if p >= 0.5 else float(1 - p) for p in p_pos]
    result = classification_metrics(truth, predicted, confidences, manifest.labels)
    per_question, start = [], 0
    for group in data.groups:
        end = start + len(group.candidates)
        per_question.append((p_pos[start:end], [y for _, y in group.candidates]))
        start = end
    ranked = map_mrr(per_question)
    result.update({"map": ranked["map"], "mrr": ranked["mrr"],
                   "n_questions": len(data.groups),
                   "n_questions_ranked": ranked["questions_ranked"], "n_pairs": len(pairs),
                   "threshold": 0.5})
    return result


def render(result: dict[str, Any]) -> str:
    """The human-readable summary of an evaluate_model result (``--json`` prints it whole)."""
    model, data = result["model"], result["data"]
    lines = [f"{model['model_id']} {model['version']} on {data['source']} ({result['format']}): "
             f"{result['n']} examples, {result['n_pairs']} pairs, {result['seconds']} s"]
    figures = ["accuracy", "precision", "recall", "macro_f1", "weighted_f1", "ece"]
    if result["format"] == "wikiqa":
        figures += ["map", "mrr"]
    lines += [f"  {name:<12} {result[name]:.4f}" for name in figures]
    lines += [f"  f1 {label:<9} {value:.4f}" for label, value in result["per_class_f1"].items()]
    labels = result["labels"]
    lines.append("  confusion (rows true, columns predicted): " + ", ".join(labels))
    lines += [f"    {label:<10} {row}" for label, row in zip(labels, result["confusion_matrix"])]
    for key, groups in result.get("slices", {}).items():
        lines.append(f"  by {key}: " + ", ".join(
            f"{name} {g['accuracy']:.3f} (n={g['n']})" for name, g in groups.items()))
    if data["skipped"]:
        lines.append("  skipped while reading: " + _summary(collections.Counter(data["skipped"])))
    return "\n".join(lines)
