"""Decision thresholds a bundle carries, chosen at export on labelled check pairs.

A matcher's probability of "this answers the question" depends on how it was trained: one
trained on WikiQA (about 1 candidate in 8 is right) puts true matches around 0.3. So the
threshold above which the box answers a student's question is chosen for each matcher, on
its own (int8) outputs: the one that maximises the F-beta of the positive class with
beta = 0.5, which weighs precision twice as much as recall. In a classroom a wrong answer
costs more than a question forwarded to the teacher (measured with bench/serve.py's 2,000-entry
knowledge base and the WikiQA matcher: at the best-F1 threshold, 0.32, 30 of 43 questions the
knowledge base cannot answer got an answer anyway).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def best_f1_threshold(positive_probability: Sequence[float], is_positive: Sequence[bool],
                      beta: float = 1.0) -> float | None:
    """The probability threshold (answer when p >= it) with the best positive-class F-beta
    (beta < 1 favours precision); None when the pairs hold no positive."""
    p = np.asarray(positive_probability, dtype=np.float64)
    y = np.asarray(is_positive, dtype=bool)
    if not y.any():
        return None
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    true_positives = np.cumsum(y)
    predicted = np.arange(1, len(p) + 1)
    b2 = beta * beta
    f1 = (1 + b2) * true_positives / (b2 * y.sum() + predicted)
    # only cut between distinct probabilities: a threshold cannot split tied scores
    last_of_run = np.append(p[1:] != p[:-1], True)
    best = int(np.argmax(np.where(last_of_run, f1, -1.0)))
    return round(float(p[best]), 4)


ANSWER_BETA = 0.5


def answer_threshold_for(positive_probability: Sequence[float], is_positive: Sequence[bool]
                         ) -> float | None:
    """The threshold a matcher bundle carries: F0.5 (precision first), see the module text."""
    return best_f1_threshold(positive_probability, is_positive, beta=ANSWER_BETA)
