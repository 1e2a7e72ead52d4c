"""Student pages: one small page that works offline-first on a cheap tablet."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("student", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


@bp.get("/")
def index():
    config = current_app.extensions["chalkbox_config"]
    return render_template("student.html", max_answer_chars=config.max_answer_chars)
