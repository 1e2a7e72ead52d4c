"""Teacher sign-in for the box's pages: session cookie, CSRF token, login rate limit.

Why each piece:

- The session is Flask's signed cookie. Its key (``secrets/web.key``, 0600) is made
  once per box and kept, so every gunicorn worker (and every restart) accepts the
  same cookies, and no two boxes share a key. Workers race to create it on first
  start: each writes a candidate and hard-links it into place, which only one can
  win; everyone then reads the winner.
- The cookie is HttpOnly (page scripts cannot read it) and SameSite=Lax (another
  site's form cannot post with it). It is not Secure: the box serves plain HTTP on
  the school LAN.
- Every POST carries the session's CSRF token in a hidden field, so a page from
  elsewhere cannot make a signed-in teacher's browser change anything. The login
  form has one too (login CSRF).
- Login failures are counted per username + address and per address, in memory:
  enough to stop a student guessing at a tablet. Each gunicorn worker counts on
  its own (the box runs one by default).
- Deny by default: :func:`protect` refuses every view of the blueprint that is not
  marked :func:`public`, before the view or the CSRF check runs, so a new page
  cannot be left open by forgetting a decorator. Anonymous GET -> redirect to the
  login page; anonymous POST -> 401, never the page.
"""
from __future__ import annotations

import collections
import datetime as dt
import functools
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, redirect, request, session, url_for

from ..fsutil import fsync_dir

log = logging.getLogger(__name__)

KEY_FILE = "web.key"
KEY_BYTES = 32
SESSION_USER = "teacher"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
LIMITER = "chalkbox_login_limiter"


# --- the box's session key -----------------------------------------------------------
def load_or_create_key(secrets_dir: Path) -> bytes:
    """The box's cookie-signing key: read it, or create it once (0600, durable)."""
    secrets_dir = Path(secrets_dir)
    path = secrets_dir / KEY_FILE
    for _ in range(2):
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = b""
        if len(key) >= KEY_BYTES:
            return key
        if path.exists():  # damaged (truncated): a new key only signs teachers out
            log.warning("%s is damaged; making a new one", path)
            path.unlink(missing_ok=True)
        _create_key(secrets_dir, path)
    return path.read_bytes()


def _create_key(secrets_dir: Path, path: Path) -> None:
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=secrets_dir, prefix=f".{KEY_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp makes it 0600
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses to replace another worker's key
        except FileExistsError:
            pass
        fsync_dir(secrets_dir)
    finally:
        os.unlink(tmp)


def init_app(app: Flask) -> None:
    """Called once when the teacher blueprint is registered (``bp.record_once``)."""
    config = app.extensions["chalkbox_config"]
    app.secret_key = load_or_create_key(config.secrets_dir)
    app.config.update(SESSION_COOKIE_NAME="chalkbox_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12))
    app.extensions[LIMITER] = LoginLimiter()


# --- login rate limit --------------------------------------------------------------------
class LoginLimiter:
    """Failed logins in a sliding window, per (username, address) and per address."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window_s: float = 300.0,
                 clock=time.monotonic, max_keys: int = 10_000):
        self.per_user, self.per_address, self.window_s = per_user, per_address, window_s
        self._clock, self._max_keys = clock, max_keys
        self._failures: dict[tuple, collections.deque] = {}
        self._lock = threading.Lock()

    def _keys(self, username: str, address: str) -> list[tuple[tuple, int]]:
        return [(("user", username.casefold(), address), self.per_user),
                (("addr", address), self.per_address)]

    def _recent(self, key: tuple, now: float) -> collections.deque:
        times = self._failures.get(key, collections.deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        with self._lock:
            waits = [self._recent(key, now)[0] + self.window_s - now
                     for key, limit in self._keys(username, address)
                     if len(self._recent(key, now)) >= limit]
        return int(max(waits) + 1) if waits else 0

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:  # bounded memory: forget idle keys
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
            for key, _ in self._keys(username, address):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(username, address)[0][0], None)


def limiter() -> LoginLimiter:
    return current_app.extensions[LIMITER]


# --- session and CSRF ----------------------------------------------------------------------
def current_teacher() -> str | None:
    return session.get(SESSION_USER)


def csrf_token() -> str:
    """This session's CSRF token (made on first use); templates put it in every form."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(SESSION_CSRF, "")
    if not expected or not hmac.compare_digest(sent.encode()[:200], expected.encode()):
        abort(400, "This form has expired or did not come from this box (missing or wrong "
                   "security token). Go back, reload the page and try again.")


def sign_in(username: str) -> None:
    """A fresh session for this teacher (a new CSRF token too: nothing carries over)."""
    session.clear()
    session.permanent = True
    session[SESSION_USER] = username
    csrf_token()


def sign_out() -> None:
    session.clear()


# --- who may see what ----------------------------------------------------------------------
def public(view):
    """Mark a view that anonymous visitors may use (the login page)."""
    view.public = True
    return view


def body_limit(max_bytes: int):
    """Allow this view a bigger request body than the app's default (a CSV upload)."""
    def mark(view):
        view.max_body = max_bytes
        return view
    return mark


def _refuse():
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("teacher.login", next=request.path))
    abort(401, "Please sign in as a teacher first.")


def login_required(view):
    """Explicit mark for teacher-only views; :func:`protect` enforces it for every view."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_teacher():
            return _refuse()
        return view(*args, **kwargs)
    return wrapped


def protect(bp: Blueprint) -> None:
    """Sign-in (deny by default) and CSRF for every request of ``bp``."""
    @bp.before_request
    def guard():
        view = current_app.view_functions.get(request.endpoint)
        if getattr(view, "max_body", None):
            request.max_content_length = view.max_body
        if not getattr(view, "public", False) and not current_teacher():
            return _refuse()
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            check_csrf()
        return None

    @bp.after_request
    def no_store(response):
        # Class data on a shared tablet: not kept in the browser's cache after sign-out.
        response.headers["Cache-Control"] = "no-store"
        return response

    bp.record_once(lambda state: init_app(state.app))


def safe_next(target: str | None) -> str:
    """Where to go after login: only a page of ours (no open redirect)."""
    if target and target.startswith("/teacher") and "//" not in target and "\\" not in target:
        return target
    return url_for("teacher.dashboard")
