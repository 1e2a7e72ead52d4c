"""How texts become the (first, second) pair a cross-encoder reads.

Owned by the box and named in each bundle's manifest (``input_format``), so the
centre trains on exactly what the box will feed the model.
"""
from __future__ import annotations

from ..errors import FormatError


def grade_pair(input_format: str, question: str, reference: str, answer: str) -> tuple[str, str]:
    if input_format == "reference|answer":
        return reference, answer
    if input_format == "question+reference|answer":
        return f"{question} | {reference}", answer
    if input_format == "question|answer":
        return question, answer
    raise FormatError(f"unknown input_format {input_format!r}", field="input_format")


def labelled_grade_pairs(exercises, answers, input_format: str):
    """(pairs, labels) for labelled answers: one pair per reference answer of the exercise.

    ``exercises``: appliance.content.Exercise items; ``answers``: LabelledAnswer items.
    """
    by_id = {e.id: e for e in exercises}
    pairs, labels = [], []
    for item in answers:
        exercise = by_id[item.exercise_id]
        for reference in exercise.reference_answers:
            pairs.append(grade_pair(input_format, exercise.question, reference, item.answer))
            labels.append(item.label)
    return pairs, labels
