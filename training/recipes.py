"""Recipes: the data, split and settings that make one model, as one call."""
from __future__ import annotations

from pathlib import Path

from appliance.content import demo_content_dir, read_labelled_content
from appliance.inference.pairs import labelled_grade_pairs

from .data.splits import split_by_group
from .finetune import FinetuneConfig, finetune


def train_grader(data_dir: Path | None, out_dir: Path, *, eval_fraction: float = 0.15,
                 seed: int = 42, **settings) -> dict[str, float]:
    """Fine-tune a grader on a content dir, holding out whole exercises for validation."""
    config = FinetuneConfig(output_dir=Path(out_dir), seed=seed, **settings)
    exercises, answers = read_labelled_content(data_dir or demo_content_dir())
    train_answers, eval_answers = split_by_group(answers, lambda a: a.exercise_id, eval_fraction,
                                                 seed)
    train = labelled_grade_pairs(exercises, train_answers, config.input_format)
    evaluation = labelled_grade_pairs(exercises, eval_answers, config.input_format)
    return finetune(config, train, evaluation if evaluation[0] else None)
