"""The box's web service: a Flask app factory and one blueprint per area."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from ..config import BoxConfig, load_config
from ..service import BoxService


def create_app(config: BoxConfig | None = None, data_dir: str | Path | None = None) -> Flask:
    """Build the box's WSGI app. Under gunicorn this runs in each worker after the fork,
    so onnxruntime sessions (created lazily by BoxService) are never shared across forks."""
    config = config or load_config(data_dir)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=config.max_request_bytes, JSON_SORT_KEYS=False)
    service = BoxService(config)
    app.extensions["chalkbox"] = service
    app.extensions["chalkbox_config"] = config
    from .metrics import BoxMetrics

    metrics = BoxMetrics(service)
    metrics.install(app)
    service.on_batch = metrics.observe_batch
    app.extensions["chalkbox_metrics"] = metrics
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import api, errors, openapi, ops, student, teacher
    errors.register(app)
    app.register_blueprint(student.bp)
    app.register_blueprint(teacher.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(ops.bp)
    return app
