"""Every error leaves the box as a small JSON body (or a plain page): never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import ApplianceError, BundleError, FormatError, NotFound, NotSaved, StoreError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, field: str | None = None, hint: str | None = None):
    body = {"error": {"status": status, "message": message}}
    if field:
        body["error"]["field"] = field
    if hint:
        body["error"]["hint"] = hint
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            return error_response(413, f"request body is larger than {limit} bytes", field="body")
        response, status = error_response(exc.code or 500, exc.description or exc.name)
        for name, value in exc.get_headers():  # e.g. Allow on 405, WWW-Authenticate on 401
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(FormatError)
    def bad_input(exc: FormatError):
        return error_response(400, exc.message, field=exc.field, hint=exc.hint)

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound):
        return error_response(404, exc.message, hint=exc.hint)

    @app.errorhandler(NotSaved)
    def not_saved(exc: NotSaved):
        log.error("answer graded but not saved: %s", exc.message)
        response, status = error_response(503, "your answer was checked but could not be saved; "
                                               "it will be sent again", hint=exc.hint)
        body = response.get_json()
        body.update(saved=False, grade=exc.grade)
        return jsonify(body), status

    @app.errorhandler(StoreError)
    def store_down(exc: StoreError):
        log.error("store: %s", exc.message)
        return error_response(503, "the box could not use its store; please try again",
                              hint=exc.hint)

    @app.errorhandler(BundleError)
    def no_model(exc: BundleError):
        log.error("model: %s", exc.message)
        return error_response(503, "the grading model is not available", hint=exc.hint)

    @app.errorhandler(ApplianceError)
    def other(exc: ApplianceError):
        log.error("%s: %s", type(exc).__name__, exc.message)
        return error_response(500, exc.message, hint=exc.hint)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged")
