"""Deterministic splits grouped by question, so evaluation questions are never trained on."""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def _bucket(group: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_by_group(items: Sequence[T], group_of: Callable[[T], str], eval_fraction: float,
                   seed: int = 13) -> tuple[list[T], list[T]]:
    """(train, eval): whole groups go to one side; stable when other groups are added."""
    train, held_out = [], []
    for item in items:
        (held_out if _bucket(group_of(item), seed) < eval_fraction else train).append(item)
    return train, held_out
