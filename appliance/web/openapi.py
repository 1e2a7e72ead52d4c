"""The OpenAPI document of the box's JSON API, served at /api/v1/openapi.json.

Written by hand as a Python dict so that it says exactly what ``api.py`` and ``ops.py`` do:
the same fields, the same limits (read from the box's config where the config sets them),
``additionalProperties: false`` where the API refuses unknown fields, and the error body
that ``errors.py`` writes for every 4xx/5xx. ``tests/appliance/test_openapi_fuzz.py`` fuzzes a
real server from this document, so a route or a limit that changes without it fails there.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from ..config import BoxConfig

bp = Blueprint("openapi", __name__)

OPENAPI_PATH = "/api/v1/openapi.json"

# Limits the API enforces itself (appliance/web/api.py); the answer's comes from the config.
EXERCISE_ID_MAX = 64
CLASS_ID_MAX = 40
NICKNAME_MAX = 40
IDEMPOTENCY_KEY_MAX = 64
QUESTION_MAX = 2000
REFERENCE_MAX = 4000



def _not_blank_pattern() -> str:
    """A regex (same meaning in ECMA-262, which JSON Schema uses, and in Python) matching any
    character that str.strip() keeps: the server strips surrounding whitespace and refuses
    what is left empty. Not ``\\S``: ECMA's and Python's whitespace differ (U+001C..U+001F,
    U+0085, U+FEFF)."""
    spaces = [c for c in range(0x110000) if chr(c).isspace()]
    ranges: list[list[int]] = []
    for c in spaces:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])

    def esc(c: int) -> str:
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return "[^" + "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges) + "]"


# A value must hold at least one character that survives str.strip().
NOT_BLANK = _not_blank_pattern()


def _text(max_length: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK,
            "description": description + f" Surrounding whitespace is stripped; at most "
                                         f"{max_length} characters remain; never blank."}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


def build_document(config: BoxConfig) -> dict[str, Any]:
    """The OpenAPI 3.0 document for a box with this config."""
    answer_max = config.max_answer_chars
    body_max = config.max_request_bytes
    too_large = _error(f"The request body is larger than {body_max} bytes (field 'body').")
    bad_input = _error("Malformed JSON, a body that is not a JSON object, a missing, empty, "
                       "too long or wrongly typed field, or an unknown field; 'field' names it.")
    no_model = _error("The grading model or the store is not available; try again later.")
    schemas: dict[str, Any] = {
        "ErrorDetail": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599,
                           "description": "The HTTP status again."},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The request field that was refused."},
                "hint": {"type": "string", "description": "What to do about it."},
            },
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
            "additionalProperties": False,
        },
        "NotSaved": {
            "description": "The answer was graded but could not be stored: the tablet shows "
                           "the grade and sends the answer again later (same idempotency_key).",
            "type": "object",
            "required": ["error", "saved", "grade"],
            "properties": {
                "error": {"$ref": "#/components/schemas/ErrorDetail"},
                "saved": {"type": "boolean", "enum": [False]},
                "grade": {"$ref": "#/components/schemas/Grade"},
            },
            "additionalProperties": False,
        },
        "Unavailable": {
            "oneOf": [{"$ref": "#/components/schemas/Error"},
                      {"$ref": "#/components/schemas/NotSaved"}],
        },
        "ExerciseSummary": {
            "type": "object",
            "required": ["id", "subject", "grade_band", "question"],
            "properties": {
                "id": {"type": "string"},
                "subject": {"type": "string"},
                "grade_band": {"type": "string"},
                "question": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "ExerciseList": {
            "type": "object",
            "required": ["exercises"],
            "properties": {"exercises": {"type": "array",
                                         "items": {"$ref": "#/components/schemas/ExerciseSummary"}}},
            "additionalProperties": False,
        },
        "Grade": {
            "type": "object",
            "required": ["label", "confidence", "correct", "probabilities", "reference",
                         "model_id", "model_version"],
            "properties": {
                "label": {"type": "string", "description": "One of the model's labels."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "correct": {"type": "boolean"},
                "probabilities": {
                    "type": "object",
                    "description": "Label -> probability; empty when a re-sent answer is "
                                   "answered from its stored record.",
                    "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "reference": {"type": "string",
                              "description": "The reference answer the answer came closest to."},
                "model_id": {"type": "string"},
                "model_version": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "AnswerIn": {
            "type": "object",
            "required": ["exercise_id", "answer", "class_id", "nickname"],
            "properties": {
                "exercise_id": _text(EXERCISE_ID_MAX, "An exercise id from GET /exercises."),
                "answer": _text(answer_max, "The student's answer."),
                "class_id": _text(CLASS_ID_MAX, "The class the student joined."),
                "nickname": _text(NICKNAME_MAX, "The student's nickname in that class."),
                "idempotency_key": {
                    **_text(IDEMPOTENCY_KEY_MAX, "One key per answer: a re-send with the same "
                                                 "key and answer is stored once (200, "
                                                 "resent: true)."),
                    "nullable": True,
                },
            },
            "additionalProperties": False,
        },
        "AnswerOut": {
            "type": "object",
            "required": ["record_id", "saved", "resent", "grade"],
            "properties": {
                "record_id": {"type": "string", "format": "uuid"},
                "saved": {"type": "boolean", "enum": [True]},
                "resent": {"type": "boolean"},
                "grade": {"$ref": "#/components/schemas/Grade"},
            },
            "additionalProperties": False,
        },
        "GradeIn": {
            "type": "object",
            "required": ["question", "reference", "answer"],
            "properties": {
                "question": _text(QUESTION_MAX, "The question."),
                "reference": _text(REFERENCE_MAX, "A reference answer."),
                "answer": _text(answer_max, "The answer to grade."),
            },
            "additionalProperties": False,
        },
        "GradeOut": {
            "type": "object",
            "required": ["record_id", "saved", "grade"],
            "properties": {
                "record_id": {"type": "string", "format": "uuid"},
                "saved": {"type": "boolean", "enum": [True]},
                "grade": {"$ref": "#/components/schemas/Grade"},
            },
            "additionalProperties": False,
        },
        "AskIn": {
            "type": "object",
            "required": ["question", "class_id", "nickname"],
            "properties": {
                "question": _text(answer_max, "The student's question."),
                "class_id": _text(CLASS_ID_MAX, "The class the student joined."),
                "nickname": _text(NICKNAME_MAX, "The student's nickname in that class."),
                "idempotency_key": {
                    **_text(IDEMPOTENCY_KEY_MAX, "One key per question: a re-send with the same "
                                                 "key is stored once."),
                    "nullable": True,
                },
            },
            "additionalProperties": False,
        },
        "AskOut": {
            "type": "object",
            "description": "Answered from the class FAQ (answer, faq_id, matched_question), or "
                           "forwarded to the teacher (forwarded: true; no answer).",
            "required": ["record_id", "saved", "forwarded", "confidence"],
            "properties": {
                "record_id": {"type": "string", "format": "uuid"},
                "saved": {"type": "boolean", "enum": [True]},
                "forwarded": {"type": "boolean"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
                               "description": "null when the box has no question models."},
                "answer": {"type": "string"},
                "faq_id": {"type": "string"},
                "matched_question": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "AskNotSaved": {
            "description": "The question was answered but could not be stored.",
            "type": "object",
            "required": ["error", "saved", "grade"],
            "properties": {
                "error": {"$ref": "#/components/schemas/ErrorDetail"},
                "saved": {"type": "boolean", "enum": [False]},
                "grade": {"type": "object", "description": "What the box found (AskResult)."},
            },
            "additionalProperties": False,
        },
        "AskUnavailable": {
            "oneOf": [{"$ref": "#/components/schemas/Error"},
                      {"$ref": "#/components/schemas/AskNotSaved"}],
        },
        "FeedbackIn": {
            "type": "object",
            "required": ["record_id", "feedback", "class_id", "nickname"],
            "properties": {
                "record_id": _text(36, "The record_id of the answer or question rated."),
                "feedback": {"type": "string", "enum": ["up", "down"]},
                "class_id": _text(40, "The class code the student joined with."),
                "nickname": _text(40, "The student's nickname (kept on the box only)."),
            },
            "additionalProperties": False,
        },
        "FeedbackOut": {
            "type": "object",
            "required": ["record_id", "saved"],
            "properties": {"record_id": {"type": "string"}, "saved": {"type": "boolean"}},
        },
        "ExplainIn": {
            "type": "object",
            "required": ["exercise_id", "answer"],
            "properties": {
                "exercise_id": _text(EXERCISE_ID_MAX, "An exercise id from GET /exercises."),
                "answer": _text(answer_max, "The student's answer."),
            },
            "additionalProperties": False,
        },
        "Explanation": {
            "type": "object",
            "required": ["hint", "suggestion", "words"],
            "properties": {
                "hint": {"type": "string",
                         "description": "The part of the reference the answer supports best."},
                "suggestion": {"type": "string", "nullable": True,
                               "description": "For a wrong answer, the part of the reference it "
                                              "supports least; null when correct."},
                "words": {
                    "type": "array",
                    "description": "Spans of the answer and how much P(correct) drops without "
                                   "each (occlusion).",
                    "items": {
                        "type": "object",
                        "required": ["text", "weight"],
                        "properties": {"text": {"type": "string"},
                                       "weight": {"type": "number", "minimum": -1,
                                                  "maximum": 1}},
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
        "Model": {
            "type": "object",
            "required": ["model_id", "version", "task", "labels", "metrics", "created_at"],
            "properties": {
                "model_id": {"type": "string"},
                "version": {"type": "string"},
                "task": {"type": "string"},
                "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "metrics": {"type": "object", "description": "What the export measured."},
                "created_at": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
            "additionalProperties": False,
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not ready"]},
                "checks": {
                    "type": "object",
                    "required": ["model", "store"],
                    "properties": {"model": {"type": "string"}, "store": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    }

    def body(ref: str) -> dict[str, Any]:
        return {"required": True, "description": f"A JSON object of at most {body_max} bytes.",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}

    paths: dict[str, Any] = {
        "/api/v1/exercises": {"get": {
            "operationId": "listExercises", "tags": ["exercises"],
            "summary": "The box's exercises.",
            "responses": {"200": _json("ExerciseList", "Every exercise on the box.")},
        }},
        "/api/v1/exercises/{exercise_id}": {"get": {
            "operationId": "getExercise", "tags": ["exercises"],
            "summary": "One exercise.",
            "parameters": [{"name": "exercise_id", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}}],
            "responses": {
                "200": _json("ExerciseSummary", "The exercise."),
                "404": _error("No exercise with this id."),
            },
        }},
        "/api/v1/answers": {"post": {
            "operationId": "submitAnswer", "tags": ["answers"],
            "summary": "A student's answer: graded, stored durably, then acknowledged.",
            "requestBody": body("AnswerIn"),
            "responses": {
                "201": _json("AnswerOut", "Graded and stored (fsync'd) before this reply."),
                "200": _json("AnswerOut", "A re-send of an answer already stored under this "
                                          "idempotency_key: the first grade, resent: true."),
                "400": bad_input,
                "404": _error("No exercise with this exercise_id."),
                "413": too_large,
                "503": _json("Unavailable", "Graded but not stored (saved: false, with the "
                                            "grade), or no model or store."),
            },
        }},
        "/api/v1/grade": {"post": {
            "operationId": "gradeDirect", "tags": ["answers"],
            "summary": "Grade question + reference + answer given directly (a teacher trying "
                       "an exercise); the interaction is stored.",
            "requestBody": body("GradeIn"),
            "responses": {
                "200": _json("GradeOut", "Graded and stored."),
                "400": bad_input,
                "413": too_large,
                "503": no_model,
            },
        }},
        "/api/v1/ask": {"post": {
            "operationId": "ask", "tags": ["questions"],
            "summary": "A student's question: answered from the class FAQ when the models are "
                       "sure enough, else forwarded to the teacher. Stored either way.",
            "requestBody": body("AskIn"),
            "responses": {
                "201": _json("AskOut", "Answered or forwarded, and stored."),
                "400": bad_input,
                "413": too_large,
                "503": _json("AskUnavailable", "Not stored, or no store."),
            },
        }},
        "/api/v1/feedback": {"post": {
            "operationId": "feedback", "tags": ["answers"],
            "summary": "A student's thumbs up or down on a grade or an answer they were given; "
                       "stored (weak labels for the next model).",
            "requestBody": body("FeedbackIn"),
            "responses": {
                "201": _json("FeedbackOut", "Stored."),
                "400": bad_input,
                "404": _error("No answer or question with this record_id on this box."),
                "413": too_large,
                "503": _json("Unavailable", "Not stored."),
            },
        }},
        "/api/v1/explain": {"post": {
            "operationId": "explainAnswer", "tags": ["answers"],
            "summary": "Why an answer gets its grade: a hint, a suggestion, and the words that "
                       "drove it. Nothing is stored.",
            "requestBody": body("ExplainIn"),
            "responses": {
                "200": _json("Explanation", "The explanation."),
                "400": bad_input,
                "404": _error("No exercise with this exercise_id."),
                "413": too_large,
                "503": no_model,
            },
        }},
        "/api/v1/model": {"get": {
            "operationId": "modelInfo", "tags": ["model"],
            "summary": "The grading model in use.",
            "responses": {
                "200": _json("Model", "The current bundle's manifest, in short."),
                "503": no_model,
            },
        }},
        OPENAPI_PATH: {"get": {
            "operationId": "openapi", "tags": ["meta"],
            "summary": "This document.",
            "responses": {"200": {"description": "The OpenAPI document.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
        "/healthz": {"get": {
            "operationId": "healthz", "tags": ["operations"],
            "summary": "Liveness: the process answers.",
            "responses": {"200": _json("Health", "Alive.")},
        }},
        "/readyz": {"get": {
            "operationId": "readyz", "tags": ["operations"],
            "summary": "Readiness: the model loads and the store is there.",
            "responses": {
                "200": _json("Readiness", "Ready to take a class."),
                "503": _json("Readiness", "Not ready; 'checks' says why."),
            },
        }},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Chalkbox box API",
            "version": "1",
            "description": "The JSON API of a Chalkbox box: what tablets and tools call. Every "
                           "error is a JSON body {\"error\": {\"status\", \"message\", "
                           "\"field\"?, \"hint\"?}}.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": n} for n in ("exercises", "answers", "questions", "model", "meta",
                                          "operations")],
        "paths": paths,
        "components": {"schemas": schemas},
    }


@bp.get(OPENAPI_PATH)
def openapi_document():
    return jsonify(build_document(current_app.extensions["chalkbox_config"]))
