"""The centre's ingest server: boxes push records and fetch models over HTTP.

It speaks exactly the contract in ``appliance/sync/protocol.py`` (the box owns it):
push, latest model, model file, report. Every request must carry a box's token;
a push is verified completely (JSON, manifest, sha256, every record, the box it
claims to come from) before one record is written, then ingested in a single
transaction keyed by record id, so a resent chunk adds nothing and is acknowledged
again. Anything refused gets a JSON error naming the field and never a traceback,
and a refused push is logged and its body kept in the quarantine
(``training.quarantine``) for a person to read.

Under gunicorn: ``training.ingest_server:create_ingest_app()`` with
``CHALKBOX_CENTRE_DIR`` set (``chalkbox train serve`` does both).
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from appliance.bundle import MANIFEST_FILE, TASKS, ModelManifest
from appliance.errors import FormatError
from appliance.sync import protocol
from appliance.syncbundle import bundle_name, parse_manifest
from appliance.web.errors import error_response
from appliance.web.errors import register as register_json_errors

from .centre import CentreConfig
from .errors import TrainingError
from .fleet import BoxInfo, Fleet
from .publish import bundle_files, find_published, is_plain_name, latest
from .quarantine import quarantine
from .store import CentralStore

log = logging.getLogger(__name__)
bp = Blueprint("centre", __name__)
FILE_ROUTE = protocol.MODEL_FILE_PATH.replace("{name}", "<name>").replace("{file}", "<file>")


class Refusal(Exception):
    """A request the centre will not serve: status, message, field, and why (for quarantine)."""

    def __init__(self, status: int, message: str, *, field: str | None, reason: str,
                 hint: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.reason, self.hint = reason, hint


class Centre:
    """The config plus one store and one registry connection per thread (sqlite3 rule)."""

    def __init__(self, config: CentreConfig):
        self.config = config
        self._local = threading.local()

    def store(self) -> CentralStore:
        if getattr(self._local, "store", None) is None:
            self._local.store = CentralStore(self.config.store_path)
        return self._local.store

    def fleet(self) -> Fleet:
        if getattr(self._local, "fleet", None) is None:
            self._local.fleet = Fleet(self.config.store_path)
        return self._local.fleet


def create_ingest_app(config: CentreConfig | None = None) -> Flask:
    """Build the centre's WSGI app; without ``config``, read CHALKBOX_CENTRE_DIR."""
    config = (config or CentreConfig.from_env()).prepare()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=config.max_body_bytes)
    app.extensions["chalkbox_centre"] = Centre(config)
    Fleet(config.store_path).close()  # fail at start, not at the first push, if the db is bad
    if not app.debug:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_json_errors(app)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(TrainingError, _centre_error)
    app.register_blueprint(bp)
    return app


def _centre() -> Centre:
    return current_app.extensions["chalkbox_centre"]


def _refused(refusal: Refusal):
    response, status = error_response(refusal.status, refusal.message, field=refusal.field,
                                      hint=refusal.hint)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="chalkbox"'
    return response, status


def _too_large(exc: RequestEntityTooLarge):
    limit = _centre().config.max_body_bytes
    _drain(2 * limit)
    if request.path == protocol.PUSH_PATH:
        quarantine(_centre().config.quarantine_dir, None, box_id=request.headers.get(
            protocol.BOX_HEADER), reason="too-large", message=f"body over {limit} bytes",
            max_body_bytes=limit, max_bytes=0)
    return error_response(413, f"request body is larger than {limit} bytes", field="body",
                          hint=f"send chunks of at most {protocol.CHUNK_RECORDS} records")


def _drain(at_most: int) -> None:
    """Read and drop a refused body (up to ``at_most`` bytes) so the client gets the 413.

    gunicorn drains only 64 KiB before closing, and a client still sending when the
    socket closes sees a broken pipe, not the answer: a box whose chunk came out a little
    too big would retry blindly. Bodies far over the limit are not worth reading.
    """
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if length is None or length > at_most or stream is None:
        return
    try:
        while length > 0:
            chunk = stream.read(min(64 * 1024, length))
            if not chunk:
                return
            length -= len(chunk)
    except (OSError, ValueError):
        return


def _centre_error(exc: TrainingError):
    log.error("centre: %s", exc.message)
    return error_response(503, "the centre could not use its store; please try again later",
                          hint=exc.hint)


def _authenticate() -> BoxInfo:
    box_id = request.headers.get(protocol.BOX_HEADER, "").strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not box_id or scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, f"this needs 'Authorization: Bearer <box token>' and "
                           f"'{protocol.BOX_HEADER}: <box id>'", field="Authorization",
                      reason="unauthenticated", hint="provision the box with its token")
    box = _centre().fleet().authenticate(box_id, token.strip())
    if box is None:
        raise Refusal(401, "the box token is not valid for this box", field="Authorization",
                      reason="bad-token",
                      hint="issue a new token with 'chalkbox train fleet add-box --rotate'")
    return box


def _json_body(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refusal(400, f"the body is not JSON ({type(exc).__name__})", field="body",
                      reason="bad-json") from None


def check_push(body: bytes, box: BoxInfo) -> tuple[dict, list]:
    """Everything a push must pass before any record is written; raises Refusal."""
    payload = _json_body(body)
    try:
        manifest = parse_manifest(payload.get("manifest") if isinstance(payload, dict) else None)
    except FormatError as exc:
        raise Refusal(400, exc.message, field=exc.field, reason="bad-manifest", hint=exc.hint)
    if manifest["box_id"] != box.box_id:
        raise Refusal(403, f"box {box.box_id} may not push records of box {manifest['box_id']}",
                      field="manifest.box_id", reason="wrong-box")
    if manifest["school_id"] != box.school_id:
        raise Refusal(403, f"box {box.box_id} belongs to school {box.school_id}, not "
                           f"{manifest['school_id']}", field="manifest.school_id",
                      reason="wrong-school", hint="re-register the box with its school")
    if manifest["count"] > protocol.CHUNK_RECORDS:
        raise Refusal(400, f"a push carries at most {protocol.CHUNK_RECORDS} records",
                      field="count", reason="bad-manifest")
    try:
        return protocol.parse_push(payload)
    except FormatError as exc:
        reason = "bad-checksum" if exc.field and exc.field.endswith("sha256") else "bad-records"
        raise Refusal(400, exc.message, field=exc.field, reason=reason, hint=exc.hint)
    except RecursionError:
        raise Refusal(400, "the body is nested too deeply", field="body",
                      reason="bad-json") from None


@bp.post(protocol.PUSH_PATH)
def push():
    centre = _centre()
    body = request.get_data(cache=False)
    box = None
    try:
        box = _authenticate()
        manifest, records = check_push(body, box)
    except Refusal as refusal:
        # Bodies are kept as evidence only when they claim a box we know: strangers with
        # made-up box ids are logged, so they cannot fill the quarantine.
        claimed = request.headers.get(protocol.BOX_HEADER, "").strip()
        known = box is not None or (claimed and centre.fleet().box(claimed) is not None)
        quarantine(centre.config.quarantine_dir, body if known else None,
                   box_id=box.box_id if box else request.headers.get(protocol.BOX_HEADER),
                   reason=refusal.reason, message=f"{refusal.status} {refusal.message}",
                   max_body_bytes=centre.config.max_body_bytes,
                   max_bytes=centre.config.max_quarantine_bytes)
        return _refused(refusal)
    source = "net:" + bundle_name(box.box_id, manifest["first_id"])
    result = centre.store().add(records, source=source, box_id=box.box_id)
    centre.fleet().touch(box.box_id)
    log.info("push from %s: %d records, %d new", box.box_id, result.count, result.added)
    return jsonify(protocol.Ack.for_manifest(manifest, result.added).to_dict())


@bp.get(protocol.MODELS_LATEST_PATH)
def models_latest():
    try:
        box = _authenticate()
    except Refusal as refusal:
        return _refused(refusal)
    task = request.args.get("task", "")
    if task not in TASKS:
        return error_response(400, f"'task' must be one of {', '.join(TASKS)}", field="task")
    path = latest(_centre().config.published_root, task, box.school_id)
    if path is None:
        return error_response(404, f"no {task} model is published for school {box.school_id}")
    manifest = _published_manifest(path)
    return jsonify({"name": path.name, "manifest": manifest,
                    "files": bundle_files(ModelManifest.from_dict(manifest))})


@bp.get(FILE_ROUTE)
def model_file(name: str, file: str):
    try:
        box = _authenticate()
    except Refusal as refusal:
        return _refused(refusal)
    if not is_plain_name(name) or not is_plain_name(file):
        return error_response(400, "model and file names are plain names", field="name")
    root = _centre().config.published_root
    bundle = find_published(root, name, box.school_id)
    if bundle is None:
        return error_response(404, f"no published model {name} for this box")
    if file not in bundle_files(ModelManifest.from_dict(_published_manifest(bundle))):
        return error_response(404, f"{file} is not a file of model {name}", field="file")
    path = (bundle / file).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        return error_response(404, f"{file} is not a file of model {name}", field="file")
    return send_file(path, mimetype="application/octet-stream", conditional=True,
                     max_age=0)


@bp.post(protocol.REPORT_PATH)
def report():
    try:
        box = _authenticate()
        payload = _json_body(request.get_data(cache=False))
    except Refusal as refusal:
        return _refused(refusal)
    if not isinstance(payload, dict):
        return error_response(400, "the body must be a JSON object", field="body")
    unknown = sorted(set(payload) - {"models", "health"})
    if unknown:
        return error_response(400, f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    _centre().fleet().record_report(box.box_id, payload.get("models", {}),
                                    payload.get("health", {}))
    return jsonify({"box_id": box.box_id, "status": "recorded"})


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when the store opens and the published and quarantine dirs are there."""
    config = _centre().config
    _centre().store(), _centre().fleet()  # TrainingError (503) if the database cannot open
    checks = {"store": "ok",
              "published": "ok" if config.published_root.is_dir() else "error: missing",
              "quarantine": "ok" if config.quarantine_dir.is_dir() else "error: missing"}
    ready = not any(value.startswith("error") for value in checks.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), \
        (200 if ready else 503)


def _published_manifest(path: Path) -> dict:
    try:
        data = json.loads((path / MANIFEST_FILE).read_bytes())
        ModelManifest.from_dict(data)
    except (OSError, ValueError, RecursionError, FormatError) as exc:
        raise TrainingError(f"the published manifest of {path} cannot be read: {exc}",
                            hint="publish the bundle again")
    return data
