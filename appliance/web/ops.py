"""Operations endpoints for technicians and supervisors: liveness and readiness."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..errors import ApplianceError

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers. Nothing more: a supervisor restarts us when this fails."""
    return jsonify({"status": "ok"})


@bp.get("/metrics")
def metrics():
    """Prometheus text format: requests, latencies, batch sizes, queue, sync, model."""
    from prometheus_client import CONTENT_TYPE_LATEST

    body = current_app.extensions["chalkbox_metrics"].exposition()
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}


@bp.get("/readyz")
def readyz():
    """Ready to take a class: the model loads and the store directory is there."""
    service = current_app.extensions["chalkbox"]
    checks = {}
    try:
        manifest = service.grader().manifest
        checks["model"] = f"{manifest.model_id} {manifest.version}"
    except ApplianceError as exc:
        checks["model"] = f"error: {exc.message}"
    checks["store"] = "ok" if service.outbox.directory.is_dir() else "error: outbox missing"
    ready = all(not str(c).startswith("error") for c in checks.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (200 if ready else 503)
