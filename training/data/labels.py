"""Where a grading label comes from, which one wins, and labelled answers from the central store.

Sources, in precedence order (``TIERS``):

- ``teacher`` (gold): a ``teacher_label`` record (the teacher confirmed or corrected a grade
  in the review queue), a teacher-authored CSV/JSONL file, a content dir's answers.csv.
- ``dataset``: a public dataset's labels as given (SemEval-2013).
- ``weak``: a student's thumbs on the grade they got (a ``feedback`` record): "up" means the
  model's prediction was right, "down" that the other label is. Students rarely thumb down
  a grade in their favour, so these lean one way: used only with ``use_weak=True``.

The model's own prediction is never a label (training on it would teach the model its own
mistakes): an answer record with neither a teacher label nor (used) feedback is skipped as
``unlabelled``.

The conflict rule. Candidate labels about the *same answer* (same exercise; same text after
normalisation, or near-duplicates: clean.py decides and hands over the clusters whose labels
disagree) are resolved by :func:`resolve_labels`:

1. Weak labels are removed unless ``use_weak`` (counted as ``weak_not_used``).
2. The highest tier present decides. Each lower tier that disagrees with the decision is
   overruled: counted once per cluster as ``<winner>_over_<loser>`` (e.g.
   ``teacher_over_dataset``).
3. Within the deciding tier the majority label wins (``majority_<tier>``); a tie drops the
   answer altogether (``tie_dropped_<tier>``): no example is better than a coin flip.

The kept answer is the first member (input order) of the deciding tier with the winning label.
Several teacher labels on one answer *record* are not a conflict: the latest (by record id,
which sorts by time) is the teacher's final word; the earlier ones are skipped as
``superseded_teacher_label``. Likewise a student's latest thumbs on an answer counts.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Any, Iterable, Sequence

from appliance.content import Exercise, LabelledAnswer
from appliance.records import InteractionRecord
from export.datasets import ReadReport

from ..errors import TrainingError
from .clean import normalize_text

TIERS = ("teacher", "dataset", "weak")
LABELS = ("correct", "incorrect")
MAX_REFERENCES = 10  # as many as the content format allows per exercise


@dataclasses.dataclass(frozen=True)
class SourcedAnswer:
    """A labelled answer and the tier its label comes from."""
    exercise_id: str
    answer: str
    label: str
    source: str

    def labelled(self) -> LabelledAnswer:
        return LabelledAnswer(self.exercise_id, self.answer, self.label)


def sourced(answers: Iterable[Any], source: str) -> list[SourcedAnswer]:
    """Labelled answers (LabelledAnswer or alike) as coming from one tier."""
    if source not in TIERS:
        raise TrainingError(f"label source must be one of {', '.join(TIERS)}, got {source!r}")
    return [SourcedAnswer(a.exercise_id, a.answer, a.label, source) for a in answers]


def source_rank(answer: SourcedAnswer) -> int:
    """Lower wins: teacher 0, dataset 1, weak 2 (clean.py's ``rank``)."""
    return TIERS.index(answer.source)


@dataclasses.dataclass
class LabelReport:
    used: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    weak_not_used: int = 0
    conflicts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    answers_dropped: int = 0  # members of conflict clusters not kept (losers, ties, same-label)

    def to_dict(self) -> dict[str, Any]:
        return {"used": {t: self.used[t] for t in TIERS if self.used[t]},
                "weak_not_used": self.weak_not_used,
                "conflicts": dict(sorted(self.conflicts.items())),
                "answers_dropped_in_conflicts": self.answers_dropped}


def resolve_labels(answers: Iterable[SourcedAnswer],
                   conflicts: Iterable[Sequence[SourcedAnswer]] = (), *,
                   use_weak: bool = False) -> tuple[list[LabelledAnswer], LabelReport]:
    """(one LabelledAnswer per answer, report). ``answers``: answers without a conflict
    (clean.py's kept ones); ``conflicts``: clusters of the same answer with different
    labels (``CleaningReport.conflicts``). The rule is in the module docstring."""
    report = LabelReport()
    out = []
    for answer in answers:
        if answer.source == "weak" and not use_weak:
            report.weak_not_used += 1
            continue
        report.used[answer.source] += 1
        out.append(answer.labelled())
    for cluster in conflicts:
        winner = _resolve_cluster(list(cluster), use_weak, report)
        if winner is not None:
            report.used[winner.source] += 1
            out.append(winner.labelled())
    return out, report


def _resolve_cluster(cluster: list[SourcedAnswer], use_weak: bool,
                     report: LabelReport) -> SourcedAnswer | None:
    if not use_weak:
        weak = sum(a.source == "weak" for a in cluster)
        report.weak_not_used += weak
        cluster = [a for a in cluster if a.source != "weak"]
    if not cluster:
        return None
    top = min(cluster, key=source_rank).source
    deciding = [a for a in cluster if a.source == top]
    votes = collections.Counter(a.label for a in deciding).most_common()
    if len(votes) > 1 and votes[0][1] == votes[1][1]:
        report.conflicts[f"tie_dropped_{top}"] += 1
        report.answers_dropped += len(cluster)
        return None
    label = votes[0][0]
    if len(votes) > 1:
        report.conflicts[f"majority_{top}"] += 1
    for lower in {a.source for a in cluster if a.source != top and a.label != label}:
        report.conflicts[f"{top}_over_{lower}"] += 1
    report.answers_dropped += len(cluster) - 1
    return next(a for a in deciding if a.label == label)


# --------------------------------------------------------------------------- central store

@dataclasses.dataclass
class RecordExamples:
    exercises: list[Exercise]
    answers: list[SourcedAnswer]
    report: ReadReport


def direct_exercise_id(question: str, reference: str) -> str:
    """An id for a ``grade`` record's exercise (graded directly, no exercise id): the same
    question and reference give the same id on every box."""
    key = f"{normalize_text(question)}\x00{normalize_text(reference)}".encode()
    return "g-" + hashlib.sha256(key).hexdigest()[:16]


def examples_from_records(records: Iterable[InteractionRecord], *, source: str = "store",
                          labels: Sequence[str] = LABELS) -> RecordExamples:
    """Labelled grading examples from central-store records (any order; they are keyed by id).

    An ``answer`` or ``grade`` record is the example (its texts carry the question, the
    reference it was graded against and the answer); a ``teacher_label`` record whose
    ``ref_id`` names it gives a teacher label, a ``feedback`` record naming it a weak one.
    A teacher label whose answer record is not in the store still counts: it carries a copy
    of the answer's texts. Exercises are keyed by ``exercise_id`` (a ``grade`` record's by
    :func:`direct_exercise_id`); the question is the latest record's (a teacher may fix a
    typo on the box), the references every distinct one the records were graded against.
    """
    report = ReadReport(source=source)
    graded: dict[str, InteractionRecord] = {}
    teacher: dict[str, InteractionRecord] = {}
    feedback: dict[str, InteractionRecord] = {}
    for record in sorted(records, key=lambda r: r.id):
        if record.kind in ("answer", "grade"):
            graded[record.id] = record
        elif record.kind == "teacher_label" and record.ref_id:
            if record.teacher_label not in labels:
                report.skip_item("unknown_label", record.id)
                continue
            previous = teacher.get(record.ref_id)
            if previous is not None:
                report.skip_item("superseded_teacher_label", previous.id)
            teacher[record.ref_id] = record
        elif record.kind == "feedback" and record.ref_id:
            feedback[record.ref_id] = record
    exercises: dict[str, dict[str, Any]] = {}
    answers: list[SourcedAnswer] = []
    for ref_id in sorted(graded.keys() | teacher.keys()):
        example = graded.get(ref_id) or teacher[ref_id]
        candidates = _candidates(example, teacher.get(ref_id), feedback.get(ref_id), labels,
                                 report)
        if not candidates:
            continue
        exercise_id = _note_exercise(example, exercises, report)
        if exercise_id is None:
            continue
        answers.extend(SourcedAnswer(exercise_id, example.texts["answer"], label, tier)
                       for label, tier in candidates)
    report.items_read = len(answers)
    report.questions = len(exercises)
    return RecordExamples([_exercise(eid, d) for eid, d in exercises.items()], answers, report)


def _candidates(example: InteractionRecord, label: InteractionRecord | None,
                thumbs: InteractionRecord | None, labels: Sequence[str],
                report: ReadReport) -> list[tuple[str, str]]:
    """(label, tier) pairs for one example record; the reason is counted when there are none."""
    if not example.texts.get("answer"):
        report.skip_item("no_answer", example.id)
        return []
    out = []
    if label is not None:
        out.append((label.teacher_label, "teacher"))
    if thumbs is not None:
        weak = _weak_label(example.prediction, thumbs.feedback, labels)
        if weak is None:
            report.skip_item("feedback_without_known_prediction", thumbs.id)
        else:
            out.append((weak, "weak"))
    if not out:
        report.skip_item("unlabelled", example.id)
    return out


def _weak_label(prediction: str | None, thumbs: str | None, labels: Sequence[str]) -> str | None:
    """Thumbs up: the prediction was right; down: the other of two labels was."""
    if prediction not in labels or len(labels) != 2:
        return None
    if thumbs == "up":
        return prediction
    return labels[1 - list(labels).index(prediction)] if thumbs == "down" else None


def _note_exercise(record: InteractionRecord, exercises: dict[str, dict[str, Any]],
                   report: ReadReport) -> str | None:
    question = normalize_text(record.texts.get("question", ""))
    reference = normalize_text(record.texts.get("reference", ""))
    if not question or not reference:
        report.skip_item("no_question_or_reference", record.id)
        return None
    exercise_id = record.exercise_id or direct_exercise_id(question, reference)
    seen = exercises.setdefault(exercise_id, {"references": {}})
    # records come in id (= time) order, so the last one written is the latest version
    seen.update(question=question, subject=record.subject or seen.get("subject", ""),
                grade_band=record.grade_band or seen.get("grade_band", ""))
    if len(seen["references"]) < MAX_REFERENCES:
        seen["references"].setdefault(reference, None)
    return exercise_id


def _exercise(exercise_id: str, data: dict[str, Any]) -> Exercise:
    return Exercise(id=exercise_id, subject=data["subject"], grade_band=data["grade_band"],
                    question=data["question"], reference_answers=tuple(data["references"]))


GRADED_KINDS = ("answer", "grade")  # the interactions that carry (question, reference, answer)


def graded_texts(records: Iterable[InteractionRecord], *, kinds: Sequence[str] = GRADED_KINDS,
                 unlabelled_only: bool = False) -> list[tuple[str, str, str]]:
    """(question, reference that decided, answer) of every graded record from the boxes that
    carries its reference and answer, in record-id order (the order they were made).
    ``unlabelled_only``: leave out those a teacher label points at (the round distils the
    teacher's soft targets on these; labelled ones are already in its training data)."""
    graded, labelled = {}, set()
    for record in records:
        if record.kind == "teacher_label" and record.ref_id:
            labelled.add(record.ref_id)
        elif record.kind in kinds and record.texts.get("reference") and record.texts.get("answer"):
            graded[record.id] = (record.texts.get("question", ""), record.texts["reference"],
                                 record.texts["answer"])
    return [texts for record_id, texts in sorted(graded.items())
            if not (unlabelled_only and record_id in labelled)]

