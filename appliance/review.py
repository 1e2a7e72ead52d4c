"""Which records a teacher reviews first: uncertainty sampling, a random sample, or both mixed.

Pure functions over records, independent of Flask and of the store, so the box's
review queue and the centre's "uncertainty vs random at the same budget" benchmark
call exactly the same code.

*Uncertainty* is how close the model was to its decision boundary, in [0, 1]
(1: a coin toss, 0: certain):

- a record that carries class probabilities (an object with ``probabilities``,
  e.g. a centre-side evaluation row) scores 1 - (top class - second class);
- an ``answer``/``grade`` record carries only ``confidence``, the probability of
  the predicted (top) class ``c``: the margin to the second class is at least
  2c - 1, so it scores min(1, 2 - 2c) (exactly 1 - |2p - 1| for a two-class grader);
- a forwarded ``question`` carries its best FAQ match's probability ``p`` of "this
  answers it": it scores 1 - |2p - 1|, so a question the matcher nearly answered
  counts as uncertain and one it was sure nothing fits does not;
- a record with no model output at all (a question asked with no matcher or an
  empty FAQ) scores 1: the model knows nothing there.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from .errors import ApplianceError
from .records import InteractionRecord

STRATEGIES = ("uncertainty", "random", "mixed")

# Scores are rounded before they are compared, so that two routes to the same number
# (2 - 2c for an answer, 1 - |2p - 1| for a question) tie instead of differing in the
# last bit; ties are then broken by record id (UUIDv7: the older record first).
_SCORE_DIGITS = 9


class ReviewError(ApplianceError):
    """A review sampling request that cannot be carried out as asked."""


def boundary_uncertainty(positive: float) -> float:
    """1 - |2p - 1| for the probability ``p`` of the positive class."""
    return 1.0 - abs(2.0 * positive - 1.0)


def margin_uncertainty(probabilities: Sequence[float]) -> float:
    """1 - (top - second) over a whole class distribution."""
    ranked = sorted((float(p) for p in probabilities), reverse=True)
    if not ranked:
        return 1.0
    second = ranked[1] if len(ranked) > 1 else 1.0 - ranked[0]
    return min(1.0, max(0.0, 1.0 - (ranked[0] - second)))


def uncertainty(record: InteractionRecord) -> float:
    """How unsure the model was about this record, in [0, 1] (see the module text)."""
    probabilities = getattr(record, "probabilities", None)
    if probabilities is not None:
        values = probabilities.values() if hasattr(probabilities, "values") else probabilities
        return round(margin_uncertainty(list(values)), _SCORE_DIGITS)
    if record.confidence is None:
        return 1.0
    if record.kind == "question":
        return round(boundary_uncertainty(record.confidence), _SCORE_DIGITS)
    return round(min(1.0, 2.0 - 2.0 * record.confidence), _SCORE_DIGITS)


def random_rank(record: InteractionRecord, seed: int | str) -> str:
    """A record's place in the seeded random order: a hash of seed and id, so the order
    depends neither on the input order nor on which other records are candidates
    (a new record never reshuffles the ones already queued)."""
    return hashlib.sha256(f"{seed}\x00{record.id}".encode("utf-8")).hexdigest()


def order_for_review(candidates: Iterable[InteractionRecord], *, strategy: str = "uncertainty",
                     seed: int | str = 0) -> list[InteractionRecord]:
    """Every candidate, in the order a teacher should see them."""
    if strategy not in STRATEGIES:
        raise ReviewError(f"review strategy must be one of {', '.join(STRATEGIES)}, "
                          f"got {strategy!r}",
                          hint="use 'uncertainty' (the default), 'random' or 'mixed'")
    if strategy == "mixed":
        candidates = list(candidates)
        return _interleaved(order_for_review(candidates, strategy="uncertainty"),
                            order_for_review(candidates, strategy="random", seed=seed))
    if strategy == "random":
        return sorted(candidates, key=lambda r: (random_rank(r, seed), r.id))
    return sorted(candidates, key=lambda r: (-uncertainty(r), r.id))


def _interleaved(first: list[InteractionRecord], second: list[InteractionRecord]
                 ) -> list[InteractionRecord]:
    """Alternate the two orders, each record once: half the budget where the model is least
    sure (the grades students most likely saw wrong), half a random sample (training data
    that looks like the class, not only its hardest cases). Measured by bench/rounds.py
    (one seed, docs/experiments.md E10): random sampling taught the next model most; neither
    uncertainty nor mixed beat it, while uncertainty found the most wrong grades."""
    out, seen = [], set()
    for pair in zip(first, second):
        for record in pair:
            if record.id not in seen:
                seen.add(record.id)
                out.append(record)
    return out


def select_for_review(candidates: Iterable[InteractionRecord], *, budget: int | None,
                      strategy: str = "uncertainty", seed: int | str = 0) -> list[InteractionRecord]:
    """The ``budget`` records to review (None: all of them), first to review first.

    ``uncertainty``: the most uncertain first, ties by id (oldest first). ``random``:
    a uniform sample of the same size, the same for the same seed and candidates.
    """
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 0):
        raise ReviewError(f"a review budget must be a whole number >= 0 or None, got {budget!r}",
                          hint="pass how many records a teacher can review, or None for all")
    ordered = order_for_review(candidates, strategy=strategy, seed=seed)
    return ordered if budget is None else ordered[:budget]
