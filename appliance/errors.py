"""The one root exception of the box, and its few well-known kinds.

Every error raised on purpose carries a ``hint``: what the person in front of
the box should do about it. The CLI prints ``message`` and ``hint`` on stderr;
the web layer turns them into JSON errors. Nothing else should reach a user.
"""
from __future__ import annotations


class ApplianceError(Exception):
    """Root of every deliberate Chalkbox error (export and training subclass it too)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class FormatError(ApplianceError):
    """A record, manifest or file does not match its documented format."""

    def __init__(self, message: str, field: str | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.field = field


class ConfigError(ApplianceError):
    """The box's configuration or data directory is missing or wrong."""


class BundleError(ApplianceError):
    """A model bundle is missing, unsigned, tampered with or unusable."""


class StoreError(ApplianceError):
    """The interaction store could not durably write or read."""


class NotSaved(StoreError):
    """A grade was computed but could not be stored: the tablet gets the grade, marked
    unsaved, so it can show it and send the answer again later."""

    def __init__(self, cause: StoreError, grade: dict):
        super().__init__(cause.message, cause.hint)
        self.grade = grade


class NotFound(ApplianceError):
    """A named thing (exercise, record, model) does not exist."""
