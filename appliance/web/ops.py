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
    """Prometheus text format: requests, latencies, batch sizes, queue, sync, model.

    Not for anyone on the school Wi-Fi: from the box itself, or with the configured
    ``metrics_token`` as a bearer token (for a monitoring server)."""
    import hmac

    from flask import abort, request
    from prometheus_client import CONTENT_TYPE_LATEST

    config = current_app.extensions["chalkbox_config"]
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    local = request.remote_addr in ("127.0.0.1", "::1")
    if not (config.metrics_token and hmac.compare_digest(sent, config.metrics_token)) \
            and not (local and not request.headers.get("X-Forwarded-For")):
        abort(401, "metrics need the box's metrics_token (Authorization: Bearer ...)")

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
