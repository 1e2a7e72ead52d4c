"""Teacher pages (login, dashboard, review queue, content, model, sync)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("teacher", __name__, url_prefix="/teacher")
