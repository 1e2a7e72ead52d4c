"""Durable storage on the box: the interaction outbox and the class content.

Both sit on TinyDB with :class:`AtomicJSONStorage`, so a kill -9 or a power cut
leaves every file either as it was or as it was meant to be.
"""
from .storage import AtomicJSONStorage
from .outbox import Outbox
from .content import ContentStore


def open_outbox(config) -> Outbox:
    """The box's outbox with its configured segment size and disk-space guard."""
    return Outbox(config.outbox_dir, config.segment_records,
                  min_free_bytes=config.min_free_mb * 1024 * 1024)


__all__ = ["AtomicJSONStorage", "Outbox", "ContentStore", "open_outbox"]
