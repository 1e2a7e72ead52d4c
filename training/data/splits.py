"""Deterministic splits grouped by question, so evaluation questions are never trained on.

``split_by_group``: each group to one side by a hash of (seed, group); stable when other
groups are added. ``stratified_group_split``: whole groups too, but chosen so that each
label's share of the held-out side is close to its share of the whole. ``snapshot_id``: the
content hash a trained model records as its ``dataset_snapshot``.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import random
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

import numpy as np

from ..errors import TrainingError

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


def stratified_group_split(items: Sequence[T], group_of: Callable[[T], str],
                           label_of: Callable[[T], Hashable], eval_fraction: float,
                           seed: int = 13) -> tuple[list[T], list[T]]:
    """(train, held out), each in input order: every group wholly on one side, and the
    held-out side close to ``eval_fraction`` of each label.

    The miss is the sum over labels of (held-out count - eval_fraction x total)^2. First a
    greedy pass: groups in the order of a hash of (seed, group) join the held-out side when
    that lowers the miss. Then, since whole groups rarely land exactly, the single move or
    swap of one group across sides that lowers the miss most is made, until none does.
    The result depends on the seed and on which items there are, never on their order."""
    if not 0 <= eval_fraction < 1:
        raise TrainingError(f"eval_fraction must be in [0, 1), got {eval_fraction}",
                            hint="e.g. 0.15 holds out about 15% of the questions")
    per_group: dict[str, collections.Counter] = {}
    for item in items:
        per_group.setdefault(group_of(item), collections.Counter())[label_of(item)] += 1
    if not per_group or eval_fraction == 0:
        return list(items), []
    names = sorted(per_group, key=lambda g: (_bucket(g, seed), g))
    labels = sorted({label for counts in per_group.values() for label in counts}, key=repr)
    counts = np.array([[per_group[g][label] for label in labels] for g in names], dtype=float)
    target = eval_fraction * counts.sum(axis=0)
    held = np.zeros(len(names), dtype=bool)
    miss = -target
    for index, row in enumerate(counts):  # greedy pass
        if ((miss + row) ** 2).sum() < (miss ** 2).sum():
            held[index], miss = True, miss + row
    chosen = {names[i] for i in np.flatnonzero(_refine(counts, held, target))}
    train, held_out = [], []
    for item in items:
        (held_out if group_of(item) in chosen else train).append(item)
    return train, held_out


#: Above this many (leaving x joining) pairs only single moves are tried: the pair matrix
#: would not fit in memory, and with that many groups each one is small anyway.
MAX_SWAP_PAIRS = 2_000_000


def _refine(counts: np.ndarray, held: np.ndarray, target: np.ndarray,
            max_moves: int = 1000) -> np.ndarray:
    """Best-improvement local search over moving one group, or swapping two, across sides."""
    held = held.copy()
    zero = np.zeros((1, counts.shape[1]))
    for _ in range(max_moves):
        miss = counts[held].sum(axis=0) - target
        cost = (miss ** 2).sum()
        inside, outside = np.flatnonzero(held), np.flatnonzero(~held)
        # rows: a group leaving (or none), columns: a group joining (or none)
        leave = np.vstack([zero, counts[inside]])
        join = np.vstack([zero, counts[outside]])
        if len(leave) * len(join) > MAX_SWAP_PAIRS:
            costs = np.full((len(leave), len(join)), np.inf)
            costs[:, 0] = ((miss - leave) ** 2).sum(axis=1)
            costs[0, :] = ((miss + join) ** 2).sum(axis=1)
        else:
            costs = ((miss + join[None, :, :] - leave[:, None, :]) ** 2).sum(axis=2)
        best = np.unravel_index(np.argmin(costs), costs.shape)
        if costs[best] >= cost - 1e-9:
            return held
        if best[0]:
            held[inside[best[0] - 1]] = False
        if best[1]:
            held[outside[best[1] - 1]] = True
    return held


def snapshot_id(items: Iterable[Any]) -> str:
    """``ds-`` + 16 hex digits of the sha256 of the items as canonical JSON (keys sorted),
    sorted: the same items in any order give the same id, one changed field another.
    ``items``: mappings or dataclasses of JSON values (e.g. exercise id, question,
    references, answer, label)."""
    rows = sorted(json.dumps(_as_dict(item), sort_keys=True, ensure_ascii=False,
                             separators=(",", ":")) for item in items)
    # one JSON text per line: JSON escapes newlines inside strings, so lines cannot collide
    return "ds-" + hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()[:16]


def _as_dict(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    raise TypeError(f"snapshot_id needs mappings or dataclasses, got {type(item).__name__}")


def stratified_sample_split(items: Sequence[T], label_of: Callable[[T], Any], fraction: float,
                            seed: int) -> tuple[list[T], list[T]]:
    """(kept, held out): ``fraction`` of the items of each label, drawn at random (seeded),
    not grouped: held-out *answers* of questions that stay in training, the case a
    calibration set for the box should look like (new answers to known exercises)."""
    if not fraction:
        return list(items), []
    by_label: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        by_label.setdefault(label_of(item), []).append(index)
    rng = random.Random(seed)
    held: set[int] = set()
    for label in sorted(by_label, key=repr):
        indices = by_label[label]
        held.update(rng.sample(indices, round(len(indices) * fraction)))
    return ([item for i, item in enumerate(items) if i not in held],
            [item for i, item in enumerate(items) if i in held])

