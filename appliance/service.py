"""What the box does, independent of HTTP: grade, record, serve content.

The web blueprints and the CLI call this; it owns the store handles and the
loaded model. The model is (re)loaded when the installed ``current`` bundle
changes: the new one is verified and loaded first, then swapped in, so requests
in flight finish on the old one (a switch fails no request).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .bundle import verify_bundle
from .config import BoxConfig
from .content import Exercise
from .ask import KnowledgeBase, answer_with_settings
from .errors import BundleError, FormatError, NotFound, NotSaved, StoreError
from .inference.engine import BatchedModel, Embedder, OnnxModel
from .inference.grade import Grade, grade_answer
from .models import current_bundle_dir
from .privacy import load_secret, pseudonym
from .records import InteractionRecord
from .store import ContentStore, open_outbox
from .store.roster import Roster

log = logging.getLogger(__name__)


class BoxService:
    def __init__(self, config: BoxConfig):
        self.config = config
        self.outbox = open_outbox(config)
        self.content = ContentStore(config.content_path)
        self.roster = Roster(config.roster_path)
        self._secret = load_secret(config.secrets_dir)
        self.on_batch = None  # set by the web app: metrics of every model run
        self._models: dict[str, tuple[Path, OnnxModel]] = {}  # task -> (bundle dir, model)
        self._load_lock = threading.Lock()
        self.knowledge = KnowledgeBase(self.content)

    # --- the models ------------------------------------------------------------
    def _model(self, task: str) -> OnnxModel:
        """The installed model of ``task``, (re)loaded when ``current`` points elsewhere."""
        target = current_bundle_dir(self.config.models_dir, task)
        loaded = self._models.get(task)
        if loaded is not None and loaded[0] == target:
            return loaded[1]
        with self._load_lock:
            loaded = self._models.get(task)
            if loaded is None or loaded[0] != target:
                manifest = verify_bundle(target, self.config.public_key_path)
                if task == "embed":
                    model = Embedder(target, manifest, self.config.inference_threads)
                elif self.config.batching:
                    model = BatchedModel(target, manifest, self.config.inference_threads,
                                         self.config.batch_max_size,
                                         self.config.batch_max_wait_ms / 1000,
                                         runners=self.config.batch_runners or os.cpu_count() or 1)
                else:
                    model = OnnxModel(target, manifest, self.config.inference_threads)
                model.on_batch = self.on_batch
                self._models[task] = (target, model)
                if loaded is not None:
                    loaded[1].close()  # its queued requests finish first
                log.info("%s model %s (%s)", task, manifest.name, model.providers[0])
            return self._models[task][1]

    def grader(self) -> OnnxModel:
        return self._model("grade")

    def loaded_model(self) -> OnnxModel | None:
        loaded = self._models.get("grade")
        return loaded[1] if loaded else None

    def _optional_model(self, task: str) -> OnnxModel | None:
        try:
            return self._model(task)
        except BundleError:
            return None

    # --- content ---------------------------------------------------------------
    def exercise(self, exercise_id: str) -> Exercise:
        found = self.content.exercise(exercise_id)
        if found is None:
            raise NotFound(f"no exercise with id {exercise_id!r}")
        return found

    # --- interactions ---------------------------------------------------------
    def _new_record(self, **fields) -> InteractionRecord:
        return InteractionRecord.create(box_id=self.config.box_id,
                                        school_id=self.config.school_id, **fields)

    def submit_answer(self, *, exercise_id: str, answer: str, class_id: str, nickname: str,
                      idempotency_key: str | None = None) -> tuple[InteractionRecord, Grade, bool]:
        """Grade and durably store a student's answer: (stored record, grade, is it a re-send).

        A re-send (same idempotency key) stores nothing and answers with what the
        student was told the first time.
        """
        exercise = self.exercise(exercise_id)
        student = pseudonym(self._secret, class_id, nickname)
        try:
            self.roster.remember(student, class_id, nickname)
        except StoreError as exc:  # the answer's own write below decides what the tablet hears
            log.warning("roster not updated: %s", exc.message)
        grader = self.grader()
        grade = grade_answer(grader, exercise.question, exercise.reference_answers, answer)
        record = self._new_record(
            kind="answer", class_id=class_id, subject=exercise.subject,
            grade_band=exercise.grade_band, student=student,
            exercise_id=exercise.id,
            texts={"question": exercise.question, "reference": grade.reference, "answer": answer},
            model_id=grade.model_id, model_version=grade.model_version,
            prediction=grade.label, confidence=grade.confidence,
            idempotency_key=idempotency_key)
        try:
            stored = self.outbox.append(record)  # durable before anyone is told it was saved
        except StoreError as exc:
            raise NotSaved(exc, grade.to_dict())
        if stored.id == record.id:
            return stored, grade, False
        if stored.exercise_id != exercise.id or stored.texts.get("answer") != answer:
            raise FormatError("this idempotency_key was already used for another answer",
                              field="idempotency_key", hint="send a new key with each new answer")
        return stored, Grade.from_record(stored, grader.manifest.positive_label), True

    def grade_direct(self, *, question: str, reference: str, answer: str) -> tuple[InteractionRecord, Grade]:
        grade = grade_answer(self.grader(), question, [reference], answer)
        record = self.outbox.append(self._new_record(
            kind="grade", texts={"question": question, "reference": reference, "answer": answer},
            model_id=grade.model_id, model_version=grade.model_version,
            prediction=grade.label, confidence=grade.confidence))
        return record, grade

    def warm_up(self) -> None:
        """Load the models and embed the knowledge base now, so the first student after a
        start does not wait for it (2,000 FAQ entries take seconds to embed on 2 cores)."""
        for task in ("grade", "match"):
            self._optional_model(task)
        self.knowledge.entries_and_vectors(self._optional_model("embed"))

    def ask(self, *, question: str, class_id: str, nickname: str,
            idempotency_key: str | None = None):
        """A student's question: the class FAQ's best answer if the models are sure enough,
        else forwarded to the teacher (recorded without a prediction). (record, result)."""
        student = pseudonym(self._secret, class_id, nickname)
        try:
            self.roster.remember(student, class_id, nickname)
        except StoreError as exc:
            log.warning("roster not updated: %s", exc.message)
        matcher = self._optional_model("match")
        result = answer_with_settings(self.knowledge, self._optional_model("embed"), matcher,
                                      question, self.config)
        texts = {"question": question}
        if result.answered:
            texts["answer"] = result.answer
        record = self._new_record(
            kind="question", class_id=class_id, student=student, texts=texts,
            subject=result.subject, grade_band=result.grade_band,
            exercise_id=result.faq_id if result.answered else None,
            model_id=result.model_id, model_version=result.model_version,
            prediction=result.faq_id if result.answered else None,
            confidence=result.confidence, idempotency_key=idempotency_key)
        try:
            return self.outbox.append(record), result
        except StoreError as exc:
            raise NotSaved(exc, result.to_dict())

    def feedback(self, *, record_id: str, feedback: str, class_id: str,
                 nickname: str) -> InteractionRecord:
        """A student's thumbs on one of their own answers or questions (weak labels)."""
        student = pseudonym(self._secret, class_id, nickname)
        rated = self.outbox.find(record_id)  # reads only the segments stored since it was made
        if rated is None or rated.kind not in ("answer", "question") or rated.student != student:
            raise NotFound(f"no answer or question {record_id!r} of this student on this box")
        return self.outbox.append(self._new_record(
            kind="feedback", ref_id=rated.id, feedback=feedback, class_id=class_id,
            student=student, subject=rated.subject, grade_band=rated.grade_band,
            exercise_id=rated.exercise_id, model_id=rated.model_id,
            model_version=rated.model_version, prediction=rated.prediction))
