"""Sync failures: the centre unreachable, refusing, or a stick unusable."""
from ..errors import ApplianceError


class SyncError(ApplianceError):
    """A sync step failed; nothing was marked synced, the next attempt resumes."""
