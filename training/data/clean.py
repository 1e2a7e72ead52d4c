"""Cleaning labelled answers at the centre: normal text, no PII, no empties, no duplicates.

Pure functions, in this order per answer:

1. ``normalize_text``: Unicode NFKC (full-width letters, ligatures and compatibility forms
   become their plain letters), control and invisible format characters (zero-width spaces,
   BOMs) become spaces, runs of whitespace one space, ends stripped.
2. Dropped as ``empty`` when no letter or digit is left ("", "...", "?"): nothing to learn.
3. Dropped as ``oversize`` above ``max_chars`` (default: the record format's answer limit).
   Never truncated: the label was given to the whole text.
4. PII scrubbed with the box's own rules (``appliance.privacy.scrub_text``: emails, phone
   numbers, the ``names`` given) plus self-introduced names ("my name is Ana");
   ``pii_scrubbed`` counts the answers that changed. Only answers (student text) are
   scrubbed: questions and references are the teacher's.

Then, within one exercise (answers of different exercises are never compared; within one,
prefix filtering keeps the comparisons near linear):

- Two answers are the *same answer* when their normalised texts are equal (an
  ``exact_duplicate``), or, as a ``near_duplicate``, when they are equal after case folding
  and removing punctuation, or when the Jaccard similarity of their word-bigram shingles
  (with start/end markers, so word order counts: "A is bigger than B" is not "B is bigger
  than A") is at least ``near_duplicate`` (0.9). Same-answer is taken transitively: a
  cluster is a connected component. At 0.9 one inserted word makes a near-duplicate only
  in answers of 27 words or more (J = n / (n + 3)), one changed word at 37: short answers,
  where one word ("not") changes the meaning, collapse only when they differ in case,
  punctuation or spacing.
- A cluster whose members all carry the same label is collapsed to one answer: the one
  ``rank`` prefers (lowest first; labels.py ranks teacher < dataset < weak), then the first
  in input order. The others are counted as ``exact_duplicate`` when their text equals the
  kept one's, else ``near_duplicate``.
- A cluster whose members disagree on the label is a label conflict: none of it is kept
  here; all its members go, in input order, to ``CleaningReport.conflicts`` for
  ``labels.resolve_labels`` to decide by its documented rule.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import re
import unicodedata
from typing import Any, Callable, Iterable, Sequence, TypeVar

from appliance.content import Exercise
from appliance.privacy import names_pattern, scrub_self_named, scrub_text
from appliance.records import TEXT_FIELDS

from ..errors import TrainingError

A = TypeVar("A")  # an answer: anything with exercise_id, answer and label (a dataclass)

MAX_ANSWER_CHARS = TEXT_FIELDS["answer"]
NEAR_DUPLICATE_JACCARD = 0.9
_WHITESPACE = re.compile(r"\s+")
_HAS_WORD = re.compile(r"[^\W_]").search
DROP_REASONS = ("unknown_exercise", "empty", "oversize", "exact_duplicate", "near_duplicate")


def normalize_text(text: str) -> str:
    """NFKC, invisible and control characters as spaces, whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():  # only then pay for the per-character pass
        text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    return _WHITESPACE.sub(" ", text).strip()


def canonical_text(text: str) -> str:
    """What near-duplicates share: case folded, punctuation removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(" " if unicodedata.category(c).startswith("P") else c for c in folded)
    return " ".join(stripped.split())


def shingles(canonical: str) -> frozenset[str]:
    """Word bigrams with start and end markers: ``"a b"`` -> {"^ a", "a b", "b $"}."""
    words = ["^", *canonical.split(), "$"]
    return frozenset(f"{a} {b}" for a, b in zip(words, words[1:]))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclasses.dataclass
class CleaningReport:
    read: int = 0
    kept: int = 0
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    pii_scrubbed: int = 0
    #: clusters of the same answer with different labels, for labels.resolve_labels
    conflicts: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept,
                "dropped": {r: self.dropped[r] for r in DROP_REASONS if self.dropped[r]},
                "pii_scrubbed": self.pii_scrubbed,
                "label_conflicts": len(self.conflicts),
                "answers_in_conflicts": sum(len(c) for c in self.conflicts)}


def clean_exercises(exercises: Iterable[Exercise]) -> list[Exercise]:
    """Exercises with normalised texts and their references deduplicated (first kept);
    an exercise left without a question or a reference is dropped (it makes no pair)."""
    out = []
    for exercise in exercises:
        references = list(dict.fromkeys(r for r in map(normalize_text, exercise.reference_answers)
                                        if r))
        question = normalize_text(exercise.question)
        if references and question:
            out.append(dataclasses.replace(exercise, question=question,
                                           reference_answers=tuple(references)))
    return out


def clean_answers(exercises: Iterable[Exercise], answers: Iterable[A], *,
                  max_chars: int = MAX_ANSWER_CHARS,
                  near_duplicate: float | None = NEAR_DUPLICATE_JACCARD,
                  names: Iterable[str] = (),
                  rank: Callable[[A], int] | None = None) -> tuple[list[A], CleaningReport]:
    """(kept answers in input order, report). Answers of exercises not in ``exercises`` are
    dropped (``unknown_exercise``). ``near_duplicate``: the shingle Jaccard threshold in
    (0, 1], None to collapse exact duplicates only. See the module docstring for the rules."""
    if near_duplicate is not None and not 0 < near_duplicate <= 1:
        raise TrainingError(f"near_duplicate must be in (0, 1], got {near_duplicate}",
                            hint="0.9 collapses answers that differ by about one word in ten")
    if max_chars < 1:
        raise TrainingError(f"max_chars must be positive, got {max_chars}")
    known = {e.id for e in exercises}
    pattern = names_pattern(names)
    report = CleaningReport()
    by_exercise: dict[str, list[tuple[int, A]]] = {}
    for index, answer in enumerate(answers):
        report.read += 1
        cleaned = _clean_one(answer, known, max_chars, pattern, report)
        if cleaned is not None:
            by_exercise.setdefault(cleaned.exercise_id, []).append((index, cleaned))
    kept: list[tuple[int, A]] = []
    for group in by_exercise.values():
        kept.extend(_collapse(group, near_duplicate, rank or (lambda _: 0), report))
    kept.sort(key=lambda pair: pair[0])
    report.kept = len(kept)
    return [answer for _, answer in kept], report


def _clean_one(answer: A, known: set[str], max_chars: int, pattern, report: CleaningReport):
    if answer.exercise_id not in known:
        report.dropped["unknown_exercise"] += 1
        return None
    text = normalize_text(answer.answer)
    if not _HAS_WORD(text):
        report.dropped["empty"] += 1
        return None
    if len(text) > max_chars:
        report.dropped["oversize"] += 1
        return None
    scrubbed = scrub_self_named(scrub_text(text, pattern))
    if scrubbed != text:
        report.pii_scrubbed += 1
    return answer if scrubbed == answer.answer else dataclasses.replace(answer, answer=scrubbed)


def _collapse(group: list[tuple[int, A]], near_duplicate: float | None,
              rank: Callable[[A], int], report: CleaningReport) -> list[tuple[int, A]]:
    """One exercise's answers -> the kept ones; conflicting clusters go to the report."""
    kept = []
    for cluster in _clusters([answer.answer for _, answer in group], near_duplicate):
        members = [group[i] for i in cluster]
        if len({answer.label for _, answer in members}) > 1:
            report.conflicts.append(tuple(answer for _, answer in members))
            continue
        best = min(members, key=lambda pair: (rank(pair[1]), pair[0]))
        kept.append(best)
        for pair in members:
            if pair is not best:
                same = pair[1].answer == best[1].answer
                report.dropped["exact_duplicate" if same else "near_duplicate"] += 1
    return kept


def _clusters(texts: Sequence[str], near_duplicate: float | None) -> list[list[int]]:
    """Indexes of ``texts`` grouped into same-answer clusters, each in input order, the
    clusters in order of their first member."""
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_of: dict[str, int] = {}
    for i, text in enumerate(texts):
        union(i, first_of.setdefault(text, i))
    if near_duplicate is not None:
        first_of_key: dict[str, int] = {}
        for text, i in first_of.items():
            union(i, first_of_key.setdefault(canonical_text(text), i))
        _join_similar(first_of_key, near_duplicate, union)
    clusters: dict[int, list[int]] = {}
    for i in range(len(texts)):
        clusters.setdefault(find(i), []).append(i)
    return list(clusters.values())


def _join_similar(first_of_key: dict[str, int], threshold: float, union) -> None:
    """Union every pair of distinct canonical texts whose shingle Jaccard >= threshold.

    Prefix filtering (Bayardo et al., "All-pairs similarity search", 2007), so a large
    exercise costs about linear time, not quadratic: with each set's shingles sorted rarest
    first, two sets with J >= t share a shingle within the first |s| - ceil(t |s|) + 1 of
    each; only sets meeting in those prefixes (and with sizes within the ratio t, since
    J(a, b) <= |a| / |b|) are compared."""
    sets = [(shingles(key), i) for key, i in first_of_key.items()]
    frequency = collections.Counter(token for tokens, _ in sets for token in tokens)
    sets.sort(key=lambda pair: len(pair[0]))
    index: dict[str, list[int]] = {}           # prefix shingle -> positions in ``sets``
    for n, (tokens, i) in enumerate(sets):
        ordered = sorted(tokens, key=lambda token: (frequency[token], token))
        prefix = ordered[:len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1]
        candidates = {m for token in prefix for m in index.get(token, ())}
        for m in candidates:
            other, j = sets[m]
            if len(other) >= threshold * len(tokens) and jaccard(other, tokens) >= threshold:
                union(i, j)
        for token in prefix:
            index.setdefault(token, []).append(n)
