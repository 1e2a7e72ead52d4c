"""Durable storage on the box: the interaction outbox and the class content.

Both sit on TinyDB with :class:`AtomicJSONStorage`, so a kill -9 or a power cut
leaves every file either as it was or as it was meant to be.
"""
from .storage import AtomicJSONStorage
from .outbox import Outbox
from .content import ContentStore

__all__ = ["AtomicJSONStorage", "Outbox", "ContentStore"]
