"""Answering a student's question from the class knowledge base (the FAQ).

Two stages: the sentence encoder (task "embed") retrieves the FAQ questions
nearest to the student's (cosine over precomputed, normalised vectors: numpy), then
the cross-encoder (task "match") reads the question with each candidate's answer
and gives a calibrated probability that it answers it. At or above the box's
``ask_answer_above`` the best answer is given; below, the student may rephrase and
the question goes to the teacher's queue. Two checks on the retrieval cosine come first
(box.toml ``ask_same_question_above``, ``ask_min_similarity``): a FAQ question that is the
student's question gets its answer at once, and a question nothing in the FAQ is close to goes
straight to the teacher (measured: the WikiQA-trained matcher alone forwarded 83% of the
questions the FAQ answers and answered 63% of those it does not). Without an encoder every
FAQ entry is a candidate (fine for a few hundred); without a matcher nothing is answered, since
a cosine is not a probability a teacher could set a threshold on.
"""
from __future__ import annotations

import dataclasses
import threading

import numpy as np

from .content import FaqEntry
from .inference.engine import Embedder, OnnxModel
from .inference.pairs import grade_pair

RETRIEVE_K = 5
MAX_CANDIDATES_WITHOUT_ENCODER = 300
# The reranker only chooses among candidates the encoder found nearly as close as the
# nearest: a small matcher can be confidently wrong about an unrelated answer, and a
# confident wrong answer costs more trust than a question forwarded to the teacher.
RETRIEVAL_MARGIN = 0.1


class KnowledgeBase:
    """The FAQ with its question vectors, recomputed when the FAQ or the encoder changes."""

    def __init__(self, content):
        self.content = content
        self._lock = threading.Lock()
        self._cache: tuple[tuple, list[FaqEntry], np.ndarray | None] | None = None

    def entries_and_vectors(self, embedder: Embedder | None) -> tuple[list[FaqEntry], np.ndarray | None]:
        try:
            stamp = self.content.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        key = (stamp, embedder.manifest.name if embedder else None)
        with self._lock:
            if self._cache is None or self._cache[0] != key:
                entries = self.content.faq()
                vectors = embedder.embed([e.question for e in entries]) if embedder and entries else None
                self._cache = (key, entries, vectors)
            return self._cache[1], self._cache[2]


@dataclasses.dataclass(frozen=True)
class AskResult:
    answered: bool
    confidence: float | None = None
    faq_id: str | None = None
    question: str | None = None        # the FAQ question that was matched
    answer: str | None = None
    subject: str | None = None
    grade_band: str | None = None
    model_id: str | None = None
    model_version: str | None = None
    # "answer": the matcher's probability that the FAQ answer answers it (``confidence``);
    # "question": the FAQ question is the same question (``confidence``: their cosine)
    matched_by: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


ANSWER_ABOVE = "answer_above"
FALLBACK_ANSWER_ABOVE = 0.6


def answer_threshold(matcher: OnnxModel | None, configured: float) -> float:
    """The box's ``ask_answer_above`` when a technician set one (0..1); by default (-1) the
    threshold the matcher's bundle carries, chosen at export on labelled pairs (a matcher
    trained where 1 candidate in 8 is right says "match" at 0.3, another at 0.9), else 0.6."""
    if configured >= 0.0:
        return configured
    if matcher is None:
        return FALLBACK_ANSWER_ABOVE
    return float(matcher.manifest.thresholds.get(ANSWER_ABOVE, FALLBACK_ANSWER_ABOVE))


def answer_question(kb: KnowledgeBase, embedder: Embedder | None, matcher: OnnxModel | None,
                    question: str, threshold: float, *, same_question_above: float = 0.0,
                    min_similarity: float = 0.0) -> AskResult:
    """``threshold``: usually :func:`answer_threshold` of the matcher. With the encoder,
    ``same_question_above`` (0: off): a FAQ question at least this close (cosine) is the
    student's question, so its teacher-written answer is given without asking the matcher;
    ``min_similarity`` (0: off): when no FAQ question is even this close, the knowledge base
    is not about it and the question goes to the teacher (docs/experiments.md, ask)."""
    entries, vectors = kb.entries_and_vectors(embedder)
    if not entries or matcher is None:
        return AskResult(answered=False)
    if vectors is not None:
        # einsum, not @: a matrix-vector product through a multi-threaded BLAS spends
        # ms spinning up threads per call and 40 concurrent asks fight over the cores
        # (measured: 18 ms alone, seconds under load; einsum's plain loop: < 1 ms)
        scores = np.einsum("ij,j->i", vectors, embedder.embed([question])[0])
        nearest = np.argsort(-scores)[:RETRIEVE_K]
        closest = float(scores[nearest[0]])
        if closest < min_similarity:
            return AskResult(answered=False)
        if same_question_above and closest >= same_question_above:
            return _answer(entries[nearest[0]], round(min(closest, 1.0), 4), embedder,
                           "question")
        candidates = [entries[i] for i in nearest
                      if scores[i] >= scores[nearest[0]] - RETRIEVAL_MARGIN]
    else:
        candidates = entries[:MAX_CANDIDATES_WITHOUT_ENCODER]
    manifest = matcher.manifest
    # A matcher reads (student question, candidate answer): input_format "question|answer".
    pairs = [grade_pair(manifest.input_format, question, entry.question, entry.answer)
             for entry in candidates]
    probabilities = matcher.probabilities(pairs)[:, manifest.labels.index(manifest.positive_label)]
    best = int(np.argmax(probabilities))
    confidence = round(float(probabilities[best]), 4)
    return _answer(candidates[best], confidence, matcher, "answer",
                   answered=confidence >= threshold)


def answer_with_settings(kb: KnowledgeBase, embedder: Embedder | None,
                         matcher: OnnxModel | None, question: str, config) -> AskResult:
    """:func:`answer_question` with the box's ask settings (``config``: a BoxConfig), as the
    service answers a student (and the serving benchmark's bare engine, the same way)."""
    return answer_question(kb, embedder, matcher, question,
                           answer_threshold(matcher, config.ask_answer_above),
                           same_question_above=config.ask_same_question_above,
                           min_similarity=config.ask_min_similarity)


def _answer(entry: FaqEntry, confidence: float, model: OnnxModel, matched_by: str, *,
            answered: bool = True) -> AskResult:
    return AskResult(answered=answered, confidence=confidence, faq_id=entry.id,
                     question=entry.question, answer=entry.answer, subject=entry.subject,
                     grade_band=entry.grade_band, model_id=model.manifest.model_id,
                     model_version=model.manifest.version, matched_by=matched_by)
