"""Student pages: one small page that works on a cheap tablet with flaky Wi-Fi.

English and Simplified Chinese: chosen by ``?lang=``, else the browser's
Accept-Language. The page's strings and the script's come from the same file.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, current_app, render_template, request

bp = Blueprint("student", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

LANGUAGES = {"en": "English", "zh": "中文"}
TRANSLATIONS = Path(__file__).parent / "translations"


@lru_cache(maxsize=None)
def strings(lang: str) -> dict[str, str]:
    return json.loads((TRANSLATIONS / f"{lang}.json").read_text(encoding="utf-8"))


def choose_language() -> str:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(list(LANGUAGES), default="en")


@bp.get("/")
def index():
    config = current_app.extensions["chalkbox_config"]
    lang = choose_language()
    return render_template("student.html", max_answer_chars=config.max_answer_chars, lang=lang,
                           t=strings(lang), languages=LANGUAGES)
