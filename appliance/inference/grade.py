"""Grading a student's answer against an exercise's reference answer(s)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .engine import OnnxModel
from .pairs import grade_pair


@dataclasses.dataclass(frozen=True)
class Grade:
    label: str
    confidence: float
    correct: bool
    probabilities: dict[str, float]
    reference: str        # the reference answer the student's answer came closest to
    model_id: str
    model_version: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record, positive_label: str) -> "Grade":
        """The grade a stored record carries (for answering a re-sent submission)."""
        return cls(label=record.prediction, confidence=record.confidence,
                   correct=record.prediction == positive_label, probabilities={},
                   reference=record.texts.get("reference", ""), model_id=record.model_id,
                   model_version=record.model_version)


def grade_answer(model: OnnxModel, question: str, references: Sequence[str], answer: str) -> Grade:
    """Score the answer against each reference; judge it by the one it matches best."""
    manifest = model.manifest
    pairs = [grade_pair(manifest.input_format, question, ref, answer) for ref in references]
    probs = model.probabilities(pairs)
    positive = manifest.labels.index(manifest.positive_label)
    best = int(np.argmax(probs[:, positive]))
    row = probs[best]
    label = manifest.labels[int(np.argmax(row))]
    return Grade(
        label=label,
        confidence=round(float(row.max()), 4),
        correct=label == manifest.positive_label,
        probabilities={name: round(float(p), 4) for name, p in zip(manifest.labels, row)},
        reference=references[best],
        model_id=manifest.model_id,
        model_version=manifest.version,
    )
