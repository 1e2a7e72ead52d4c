"""Chalkbox on the box: formats, store, inference and the web service.

Imports nothing of the centre's (torch, transformers, optimum): a test proves it.
"""
from __future__ import annotations


def create_app(config=None, data_dir=None):
    """The box's Flask app (see appliance.web.create_app)."""
    from .web import create_app as _create_app
    return _create_app(config, data_dir)


__all__ = ["create_app"]
