"""Why a grade: the part of the reference that matters, and the words that decided it.

Cheap enough per request: one model run of a handful of pairs (micro-batched with
everyone else's). The hint is the reference clause the answer supports best; the
suggestion (for a wrong answer) the clause it supports least; the words are
weighted by occlusion: how much the probability of "correct" drops when that
span of the answer is left out.
"""
from __future__ import annotations

import dataclasses
import re

from .engine import OnnxModel
from .pairs import grade_pair

MAX_CLAUSES = 4
MAX_SPANS = 6
_CLAUSE_SPLIT = re.compile(r"(?<=[.!?;])\s+|,\s+(?=(?:and|but|so|because|which)\b)|\s+-\s+")


def reference_clauses(reference: str) -> list[str]:
    """The reference split into at most MAX_CLAUSES clauses of at least three words."""
    parts = [p.strip(" .;,") for p in _CLAUSE_SPLIT.split(reference) if p and p.strip(" .;,")]
    clauses = [p for p in parts if len(p.split()) >= 3] or [reference.strip()]
    return clauses[:MAX_CLAUSES]


def answer_spans(answer: str, max_spans: int = MAX_SPANS) -> list[tuple[int, int]]:
    """Word index ranges [start, end) splitting the answer into at most ``max_spans`` spans."""
    count = len(answer.split())
    size = max(1, -(-count // max_spans))  # ceiling division
    return [(start, min(start + size, count)) for start in range(0, count, size)]


@dataclasses.dataclass(frozen=True)
class Explanation:
    hint: str
    suggestion: str | None
    words: list[dict]          # [{"text": span, "weight": drop in P(correct) without it}]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def explain(model: OnnxModel, question: str, reference: str, answer: str) -> Explanation:
    manifest = model.manifest
    fmt, positive = manifest.input_format, manifest.labels.index(manifest.positive_label)
    clauses = reference_clauses(reference)
    words = answer.split()
    spans = answer_spans(answer)
    occluded = [" ".join(words[:a] + words[b:]) or "." for a, b in spans]
    pairs = ([grade_pair(fmt, question, reference, answer)]
             + [grade_pair(fmt, question, clause, answer) for clause in clauses]
             + [grade_pair(fmt, question, reference, text) for text in occluded])
    p = model.probabilities(pairs)[:, positive]
    full, by_clause, without = p[0], p[1:1 + len(clauses)], p[1 + len(clauses):]
    correct = full >= 0.5
    best, worst = int(by_clause.argmax()), int(by_clause.argmin())
    suggestion = None if correct else f"Think about this part: {clauses[worst]}"
    return Explanation(
        hint=clauses[best],
        suggestion=suggestion,
        words=[{"text": " ".join(words[a:b]), "weight": round(float(full - drop), 4)}
               for (a, b), drop in zip(spans, without)])
