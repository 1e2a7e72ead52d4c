"""The student before training: the teacher cut to a subset of its layers (DistilBERT-style),
and the teacher checkpoints' descriptions an ensemble must agree on."""
from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Sequence

from export.checkpoint import CheckpointInfo, read_checkpoint_info
from export.errors import ExportError

from .errors import TrainingError

_LAYER_KEY = re.compile(r"^(.*?\blayer\.)(\d+)\.(.*)$")


def evenly_spaced_layers(total: int, count: int) -> tuple[int, ...]:
    """``count`` of ``total`` layers, DistilBERT-style: 6 -> 3 keeps 0, 2, 4 (every other)."""
    if not 1 <= count <= total:
        raise TrainingError(f"cannot keep {count} of the teacher's {total} layers",
                            hint=f"choose between 1 and {total} layers")
    return tuple(i * total // count for i in range(count))


def cut_layers(teacher_model, layers: Sequence[int]):
    """A copy of ``teacher_model`` with only ``layers`` (teacher indices, in order) in its
    encoder; every other weight (embeddings, pooler, head) copied as is."""
    total = teacher_model.config.num_hidden_layers
    if not layers or max(layers) >= total:
        raise TrainingError(f"layers {list(layers)} do not exist in a {total}-layer teacher",
                            hint=f"use indices 0..{total - 1}")
    config = copy.deepcopy(teacher_model.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher_model)(config)
    position = {teacher_index: i for i, teacher_index in enumerate(layers)}
    state, seen = {}, set()
    for key, value in teacher_model.state_dict().items():
        match = _LAYER_KEY.match(key)
        if match is None:
            state[key] = value
            continue
        seen.add(int(match.group(2)))
        if int(match.group(2)) in position:
            state[f"{match.group(1)}{position[int(match.group(2))]}.{match.group(3)}"] = value
    if seen != set(range(total)):
        raise TrainingError(f"cannot find the {total} layers of a {type(teacher_model).__name__}",
                            hint="use --student-base with a smaller checkpoint instead")
    student.load_state_dict(state, strict=True)   # strict: every student weight came from the teacher
    return student


def make_student(teacher_dir: Path, layers: Sequence[int], out: Path) -> Path:
    """Write a checkpoint of the teacher cut down to ``layers`` (weights, tokenizer, chalkbox.json
    with the teacher's task and labels) to ``out``: a student before any training."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = _teacher_info(Path(teacher_dir))
    student = cut_layers(AutoModelForSequenceClassification.from_pretrained(teacher_dir), layers)
    out = Path(out)
    student.save_pretrained(out)
    AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(out)
    dataclasses.replace(info, base_model=str(teacher_dir), metrics={"distillation": {
        "parent": str(teacher_dir), "layers": list(layers), "trained": False}}).save(out)
    return out


def _teacher_info(teacher_dir: Path) -> CheckpointInfo:
    try:
        info = read_checkpoint_info(teacher_dir)
    except ExportError as exc:
        raise TrainingError(f"teacher {teacher_dir}: {exc.message}",
                            hint="a teacher is a checkpoint written by 'chalkbox train'") from None
    if info.task == "embed":
        raise TrainingError(f"teacher {teacher_dir} is a sentence encoder, not a classifier")
    return info


def ensemble_info(teacher_dirs: Sequence[Path]) -> CheckpointInfo:
    """The first teacher's description, once every teacher agrees on what it predicts."""
    infos = [_teacher_info(d) for d in teacher_dirs]
    for directory, info in zip(teacher_dirs[1:], infos[1:]):
        for field in ("task", "labels", "input_format"):
            if getattr(info, field) != getattr(infos[0], field):
                raise TrainingError(f"teacher {directory} has {field} {getattr(info, field)!r}, "
                                    f"{teacher_dirs[0]} {getattr(infos[0], field)!r}",
                                    hint="an ensemble's teachers must grade the same pairs "
                                         "into the same labels")
    return infos[0]
