"""Teacher pages: login, dashboard, review queue, content, model, sync.

Server-rendered HTML with plain forms (no script needed, works on a phone). Every
view needs a signed-in teacher and every POST a CSRF token (``auth.protect``);
the work itself is in ``appliance.teaching``, so these views only read forms,
call it and render. Form fields are size-limited here; errors are pages with a
clear message and the right status (400, 404, 413, 429, 503), never a 500 for
anything a user can send.
"""
from __future__ import annotations

import logging

from flask import (Blueprint, current_app, flash, redirect, render_template, request, session,
                   url_for)
from werkzeug.exceptions import HTTPException

from .. import teaching
from .. import validate as v
from ..content import MAX_CSV_BYTES, Exercise
from ..errors import ApplianceError, BundleError, FormatError, NotFound, StoreError
from ..service import BoxService
from ..store.teachers import TeacherAccounts
from . import auth

log = logging.getLogger(__name__)

bp = Blueprint("teacher", __name__, url_prefix="/teacher", template_folder="templates")
auth.protect(bp)

USB_TASK = "usb_task"


def service() -> BoxService:
    return current_app.extensions["chalkbox"]


def form_text(name: str, max_len: int, *, required: bool = True) -> str | None:
    """One form field, stripped and size-checked (a FormatError naming it otherwise)."""
    return v.text(request.form, name, max_len=max_len, required=required)


@bp.context_processor
def _globals():
    return {"csrf_token": auth.csrf_token, "teacher": auth.current_teacher()}


# --- errors: pages, not JSON -------------------------------------------------------------
def _error_page(status: int, message: str, hint: str | None = None):
    return render_template("teacher_error.html", status=status, message=message, hint=hint), status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code == 413:
        return _error_page(413, "That upload or form is too large for the box.",
                           "CSV files may be at most 8 MiB; text fields have their own limits.")
    return _error_page(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(FormatError)
def _bad_input(exc: FormatError):
    return _error_page(400, exc.message, exc.hint)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return _error_page(404, exc.message, exc.hint)


@bp.errorhandler(StoreError)
@bp.errorhandler(BundleError)
def _unavailable(exc: ApplianceError):
    log.error("teacher page: %s", exc.message)
    return _error_page(503, f"The box could not do that just now: {exc.message}", exc.hint)


# --- login -------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
@auth.public
def login():
    if request.method == "GET":
        if auth.current_teacher():
            return redirect(url_for("teacher.dashboard"))
        return render_template("teacher_login.html", next=request.args.get("next", "")[:200])
    username = (request.form.get("username") or "").strip()[:40]
    password = (request.form.get("password") or "")[:256]
    address = request.remote_addr or "-"
    limiter = auth.limiter()
    wait = limiter.retry_after(username, address)
    if wait:
        message = (f"Too many failed sign-ins. Please wait {wait // 60 + 1} minute(s) "
                   "and try again.")
        return render_template("teacher_login.html", error=message, username=username), 429
    if not username or not password or not TeacherAccounts(
            current_app.extensions["chalkbox_config"].teachers_path).verify(username, password):
        limiter.failed(username, address)
        log.warning("failed teacher sign-in for %r from %s", username, address)
        return render_template("teacher_login.html", error="Wrong username or password.",
                               username=username), 401
    limiter.succeeded(username, address)
    auth.sign_in(username)
    return redirect(auth.safe_next(request.form.get("next")))


@bp.post("/logout")
@auth.login_required
def logout():
    auth.sign_out()
    return redirect(url_for("teacher.login"))


# --- dashboard and review -----------------------------------------------------------------
@bp.get("/")
@auth.login_required
def dashboard():
    svc = service()
    return render_template("teacher_dashboard.html", classes=teaching.today_activity(svc),
                           queue=teaching.review_queue(svc, auth.current_teacher()))


@bp.get("/review")
@auth.login_required
def review():
    # Only what the teacher's daily budget allows is offered; a label sent from a page
    # opened earlier is still kept (the teacher's time is already spent on it).
    return render_template("teacher_review.html",
                           queue=teaching.review_queue(service(), auth.current_teacher()),
                           review_below=service().config.review_below)


@bp.post("/review/<record_id>/label")
@auth.login_required
def label(record_id: str):
    choice = v.choice(request.form, "label", teaching.LABELS)
    teaching.label_grade(service(), record_id, choice, teacher=auth.current_teacher())
    flash(f"Saved: the answer is {choice}.")
    return redirect(url_for("teacher.review"))


@bp.post("/review/<record_id>/answer")
@auth.login_required
def answer(record_id: str):
    _, entry = teaching.answer_question(
        service(), record_id, answer=form_text("answer", 4000),
        subject=form_text("subject", 40), grade_band=form_text("grade_band", 20),
        teacher=auth.current_teacher())
    flash(f"Answered; the FAQ now holds it as {entry.id}.")
    return redirect(url_for("teacher.review"))


# --- exercises and FAQ -------------------------------------------------------------------
def _content_page(error: str | None = None, status: int = 200):
    editor = teaching.ContentEditor(service())
    return render_template("teacher_content.html", exercises=editor.exercises(),
                           faq=editor.faq(), error=error, form=request.form), status


@bp.get("/content")
@auth.login_required
def content():
    return _content_page()


@bp.post("/content/exercises")
@auth.login_required
def add_exercise():
    try:
        exercise = Exercise.from_dict({
            "id": form_text("id", 64), "subject": form_text("subject", 40),
            "grade_band": form_text("grade_band", 20), "question": form_text("question", 2000),
            "reference_answers": [form_text("reference_answer", 4000)]})
        teaching.ContentEditor(service()).add_exercise(exercise)
    except FormatError as exc:
        return _content_page(f"Not added: {exc.message}", 400)
    flash(f"Exercise {exercise.id} added.")
    return redirect(url_for("teacher.content"))


@bp.post("/content/exercises/<exercise_id>/delete")
@auth.login_required
def delete_exercise(exercise_id: str):
    teaching.ContentEditor(service()).delete_exercise(exercise_id)
    flash(f"Exercise {exercise_id} deleted.")
    return redirect(url_for("teacher.content"))


@bp.post("/content/faq/<faq_id>/delete")
@auth.login_required
def delete_faq(faq_id: str):
    teaching.ContentEditor(service()).delete_faq(faq_id)
    flash(f"FAQ entry {faq_id} deleted.")
    return redirect(url_for("teacher.content"))


@bp.post("/content/import")
@auth.login_required
@auth.body_limit(MAX_CSV_BYTES + 64 * 1024)
def import_content():
    upload = request.files.get("file")
    try:
        kind = v.choice(request.form, "kind", ("exercises", "faq"))
        mode = v.choice(request.form, "mode", teaching.IMPORT_MODES, required=False,
                        default="merge")
        if upload is None or not upload.filename:
            raise FormatError("choose a CSV file to import", field="file")
        count = teaching.ContentEditor(service()).import_csv(
            kind, upload.read(MAX_CSV_BYTES + 1), mode)
    except FormatError as exc:
        return _content_page(f"Nothing was imported: {exc.message}", 400)
    flash(f"Imported {count} {'exercises' if kind == 'exercises' else 'FAQ entries'}.")
    return redirect(url_for("teacher.content"))


# --- model and sync ----------------------------------------------------------------------
@bp.get("/model")
@auth.login_required
def model():
    from ..bundle import read_manifest_unverified
    from ..models import current_bundle_dir, installed

    config = service().config
    try:
        manifest, problem = read_manifest_unverified(current_bundle_dir(config.models_dir)), None
    except BundleError as exc:
        manifest, problem = None, exc.message
    return render_template("teacher_model.html", installed=installed(config.models_dir),
                           manifest=manifest, problem=problem, review_below=config.review_below)


@bp.get("/sync")
@auth.login_required
def sync():
    from ..sync.usb import list_sticks

    config = service().config
    task_id = session.get(USB_TASK)
    return render_template(
        "teacher_sync.html", overview=teaching.sync_overview(service()),
        sticks=list_sticks(config.usb_mount_root),
        queue_ok=teaching.worker_tasks(config) is not None,
        usb_result=teaching.usb_task_result(config, task_id) if task_id else None)


@bp.post("/sync/usb")
@auth.login_required
def sync_usb():
    config = service().config
    task_id = teaching.enqueue_usb_sync(config, form_text("stick", 4096))
    if task_id is None:
        flash("Worker queue unavailable: the sync was not started. Ask the technician to "
              "check the chalkbox-worker service.")
    else:
        session[USB_TASK] = task_id
        flash("Sync to the USB stick queued; the worker writes the records now. "
              "Wait for 'done' below before unplugging the stick.")
    return redirect(url_for("teacher.sync"))
