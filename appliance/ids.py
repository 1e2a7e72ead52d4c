"""Globally unique, time-ordered record ids (UUIDv7, RFC 9562).

Python 3.11 has no ``uuid.uuid7``; this is the RFC's "method 1": a 48-bit
millisecond timestamp, then a 12-bit counter that keeps ids monotonic inside one
millisecond of one process, then 62 random bits that keep boxes apart.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 as its canonical string; sorts by creation time."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, secrets.randbits(11)  # leave headroom to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # more than ~2k ids in one ms: borrow the next ms
                _last_ms, _counter = _last_ms + 1, 0
            ms = _last_ms
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76 | _counter << 64
        value |= 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def id_timestamp_ms(record_id: str) -> int:
    """The creation time (ms since the epoch) encoded in a UUIDv7."""
    return uuid.UUID(record_id).int >> 80


def is_uuid7(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return parsed.version == 7 and str(parsed) == value
