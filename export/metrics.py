"""Metrics as pure functions over labels, probabilities and rankings (scikit-learn inside)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np



# --------------------------------------------------------------------------- metrics

ECE_BINS = 15


def accuracy(truth: Sequence, predicted: Sequence) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(truth, predicted))


def precision(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro"
              ) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(truth, predicted, labels=list(labels), average=average,
                                 zero_division=0))


def recall(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro"
           ) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(truth, predicted, labels=list(labels), average=average,
                              zero_division=0))


def f1(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro") -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, labels=list(labels), average=average,
                          zero_division=0))


def macro_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> float:
    return f1(truth, predicted, labels, "macro")


def weighted_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> float:
    return f1(truth, predicted, labels, "weighted")


def per_class_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> dict[str, float]:
    from sklearn.metrics import f1_score

    scores = f1_score(truth, predicted, labels=list(labels), average=None, zero_division=0)
    return {str(label): float(score) for label, score in zip(labels, scores)}


def confusion_matrix(truth: Sequence, predicted: Sequence, labels: Sequence) -> list[list[int]]:
    """Rows: the true label, columns: the predicted one, both in ``labels`` order."""
    from sklearn.metrics import confusion_matrix as matrix

    return matrix(truth, predicted, labels=list(labels)).astype(int).tolist()


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               n_bins: int = ECE_BINS) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins
    (``(k/n, (k+1)/n]``, a confidence of 0 in the first) weighted by how many fall in each."""
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.shape != hits.shape:
        raise ValueError("confidences and correct differ in length")
    if conf.size == 0:
        return 0.0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(hits[mask].mean() - conf[mask].mean())
    return float(total / conf.size)


def ranking(scores: Sequence[float], labels: Sequence[int]) -> list[int]:
    """The labels in order of decreasing score (ties keep the candidates' order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(labels[i]) for i in order]


def average_precision(ranked_labels: Sequence[int]) -> float:
    """AP of one ranked list of 0/1 labels: the mean of precision at each relevant rank."""
    hits, total = 0, 0.0
    for rank, label in enumerate(ranked_labels, start=1):
        if label:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def reciprocal_rank(ranked_labels: Sequence[int]) -> float:
    for rank, label in enumerate(ranked_labels, start=1):
        if label:
            return 1.0 / rank
    return 0.0


def map_mrr(questions: Iterable[tuple[Sequence[float], Sequence[int]]]) -> dict[str, float]:
    """MAP and MRR over the questions that have at least one correct candidate (the WikiQA
    convention); ``questions``: (scores, 0/1 labels) per question."""
    aps, rrs = [], []
    for scores, labels in questions:
        if not any(labels):
            continue
        ranked = ranking(scores, labels)
        aps.append(average_precision(ranked))
        rrs.append(reciprocal_rank(ranked))
    return {"map": float(np.mean(aps)) if aps else 0.0,
            "mrr": float(np.mean(rrs)) if rrs else 0.0, "questions_ranked": len(aps)}


def classification_metrics(truth: Sequence[str], predicted: Sequence[str],
                           confidences: Sequence[float], labels: Sequence[str]
                           ) -> dict[str, Any]:
    """Every classification figure the evaluate commands print, for one set of predictions.
    precision and recall are macro averages; confidence is the probability of the prediction."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(labels)
    p, r, f, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                       average=None, zero_division=0)
    return {
        "n": len(truth),
        "labels": labels,
        "accuracy": accuracy(truth, predicted),
        "precision": precision(truth, predicted, labels),
        "recall": recall(truth, predicted, labels),
        "macro_f1": macro_f1(truth, predicted, labels),
        "weighted_f1": weighted_f1(truth, predicted, labels),
        "per_class_f1": per_class_f1(truth, predicted, labels),
        "per_class": {label: {"precision": float(p[i]), "recall": float(r[i]),
                              "f1": float(f[i]), "support": int(support[i])}
                      for i, label in enumerate(labels)},
        "confusion_matrix": confusion_matrix(truth, predicted, labels),
        "ece": expected_calibration_error(confidences,
                                          [t == q for t, q in zip(truth, predicted)]),
        "ece_bins": ECE_BINS,
    }


