"""The JSON API, version 1: what tablets and tools call."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .. import validate as v
from ..errors import FormatError
from ..service import BoxService

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def service() -> BoxService:
    return current_app.extensions["chalkbox"]


def json_body() -> dict:
    """The request's JSON object; a 400 naming 'body' when it is anything else."""
    try:
        data = request.get_json(force=True, silent=True)
    except RecursionError:  # absurdly nested JSON: the parser gives up, we refuse
        data = None
    if not isinstance(data, dict):
        raise FormatError("the request body must be a JSON object", field="body")
    return data


def _answer_limit() -> int:
    return current_app.extensions["chalkbox_config"].max_answer_chars


@bp.get("/exercises")
def list_exercises():
    items = [{"id": e.id, "subject": e.subject, "grade_band": e.grade_band, "question": e.question}
             for e in service().content.exercises()]
    return jsonify({"exercises": items})


@bp.get("/exercises/<exercise_id>")
def get_exercise(exercise_id: str):
    e = service().exercise(exercise_id)
    return jsonify({"id": e.id, "subject": e.subject, "grade_band": e.grade_band,
                    "question": e.question})


@bp.post("/answers")
def submit_answer():
    """A student's answer: graded, stored durably, then acknowledged."""
    data = json_body()
    v.no_unknown_fields(data, ("exercise_id", "answer", "class_id", "nickname",
                               "idempotency_key"), "body")
    record, grade, resent = service().submit_answer(
        exercise_id=v.text(data, "exercise_id", max_len=64),
        answer=v.text(data, "answer", max_len=_answer_limit()),
        class_id=v.text(data, "class_id", max_len=40),
        nickname=v.text(data, "nickname", max_len=40),
        idempotency_key=_idempotency_key(data))
    return (jsonify({"record_id": record.id, "saved": True, "resent": resent,
                     "grade": grade.to_dict()}), 200 if resent else 201)


@bp.post("/grade")
def grade():
    """Grade question + reference + answer given directly (a teacher trying an exercise)."""
    data = json_body()
    v.no_unknown_fields(data, ("question", "reference", "answer"), "body")
    record, result = service().grade_direct(
        question=v.text(data, "question", max_len=2000),
        reference=v.text(data, "reference", max_len=4000),
        answer=v.text(data, "answer", max_len=_answer_limit()))
    return jsonify({"record_id": record.id, "saved": True, "grade": result.to_dict()})


@bp.post("/ask")
def ask():
    """A student's question: answered from the class FAQ, or forwarded to the teacher."""
    data = json_body()
    v.no_unknown_fields(data, ("question", "class_id", "nickname", "idempotency_key"), "body")
    record, result = service().ask(
        question=v.text(data, "question", max_len=_answer_limit()),
        class_id=v.text(data, "class_id", max_len=40),
        nickname=v.text(data, "nickname", max_len=40),
        idempotency_key=_idempotency_key(data))
    body = {"record_id": record.id, "saved": True, "forwarded": not result.answered,
            "confidence": result.confidence}
    if result.answered:
        body.update(answer=result.answer, faq_id=result.faq_id, matched_question=result.question)
    return jsonify(body), 201


@bp.post("/feedback")
def feedback():
    """A thumbs up or down on a grade or an answer the student was given."""
    data = json_body()
    v.no_unknown_fields(data, ("record_id", "feedback", "class_id", "nickname"), "body")
    record = service().feedback(record_id=v.text(data, "record_id", max_len=36),
                                feedback=v.choice(data, "feedback", ("up", "down")),
                                class_id=v.text(data, "class_id", max_len=40),
                                nickname=v.text(data, "nickname", max_len=40))
    return jsonify({"record_id": record.id, "saved": True}), 201


@bp.post("/explain")
def explain_answer():
    """Why an answer got its grade: a hint, a suggestion, and the words that drove it."""
    from ..inference.explain import explain

    data = json_body()
    v.no_unknown_fields(data, ("exercise_id", "answer"), "body")
    exercise = service().exercise(v.text(data, "exercise_id", max_len=64))
    answer = v.text(data, "answer", max_len=_answer_limit())
    model = service().grader()
    from ..inference.grade import grade_answer

    reference = grade_answer(model, exercise.question, exercise.reference_answers, answer).reference
    return jsonify(explain(model, exercise.question, reference, answer).to_dict())


@bp.get("/model")
def model_info():
    manifest = service().grader().manifest
    return jsonify({"model_id": manifest.model_id, "version": manifest.version,
                    "task": manifest.task, "labels": list(manifest.labels),
                    "metrics": manifest.metrics, "created_at": manifest.created_at})


def _idempotency_key(data) -> str | None:
    """Optional, but a key that is sent must be a real one: a blank key would silently turn
    the tablet's "count this once" into "count it every time"."""
    value = data.get("idempotency_key")
    if isinstance(value, str) and not value.strip():
        raise FormatError("'idempotency_key' must not be blank (omit it or send null)",
                          field="idempotency_key")
    return v.text(data, "idempotency_key", max_len=64, required=False)
