"""Decision thresholds a bundle carries, chosen at export on labelled check pairs.

A matcher's probability of "this answers the question" depends on how it was trained: one
trained on WikiQA (about 1 candidate in 8 is right) puts true matches around 0.3. So the
threshold above which the box answers a student's question is chosen for each matcher, on
its own (int8) outputs: the one that maximises the F1 of the positive class, i.e. the
best balance of answering right against forwarding to the teacher.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def best_f1_threshold(positive_probability: Sequence[float], is_positive: Sequence[bool]
                      ) -> float | None:
    """The probability threshold (answer when p >= it) with the best positive-class F1;
    None when the pairs hold no positive."""
    p = np.asarray(positive_probability, dtype=np.float64)
    y = np.asarray(is_positive, dtype=bool)
    if not y.any():
        return None
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    true_positives = np.cumsum(y)
    predicted = np.arange(1, len(p) + 1)
    f1 = 2 * true_positives / (predicted + y.sum())
    # only cut between distinct probabilities: a threshold cannot split tied scores
    last_of_run = np.append(p[1:] != p[:-1], True)
    best = int(np.argmax(np.where(last_of_run, f1, -1.0)))
    return round(float(p[best]), 4)
