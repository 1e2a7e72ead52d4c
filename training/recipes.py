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


MATCH_LABELS = ("other", "match")


def faq_match_pairs(entries, negatives: int = 2, seed: int = 13):
    """(pairs, labels) for the "match" task from a FAQ: each question with its own answer
    (match) and with ``negatives`` other answers (other), deterministically."""
    import random

    rng = random.Random(seed)
    pairs, labels = [], []
    answers = [e.answer for e in entries]
    for index, entry in enumerate(entries):
        pairs.append((entry.question, entry.answer))
        labels.append("match")
        others = [a for i, a in enumerate(answers) if i != index]
        for answer in rng.sample(others, min(negatives, len(others))):
            pairs.append((entry.question, answer))
            labels.append("other")
    return pairs, labels


def train_matcher(faq_path: Path | None, out_dir: Path, *, seed: int = 42,
                  **settings) -> dict[str, float]:
    """Fine-tune the cross-encoder that decides whether a FAQ answer answers a question."""
    from appliance.content import read_faq

    entries = read_faq(faq_path or demo_content_dir() / "faq.csv")
    settings.setdefault("model_id", "match")
    config = FinetuneConfig(output_dir=Path(out_dir), seed=seed, task="match",
                            labels=MATCH_LABELS, positive_label="match",
                            input_format="question|answer", **settings)
    train_entries, eval_entries = split_by_group(entries, lambda e: e.id, 0.15, seed)
    return finetune(config, faq_match_pairs(train_entries),
                    faq_match_pairs(eval_entries) if eval_entries else None)
