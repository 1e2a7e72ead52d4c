"""Student pages: one small page that works offline-first on a cheap tablet."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("student", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


@bp.get("/")
def index():
    return render_template("student.html")
