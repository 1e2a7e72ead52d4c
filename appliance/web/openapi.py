"""The OpenAPI document of the box's JSON API, served at /api/v1/openapi.json."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("openapi", __name__)
