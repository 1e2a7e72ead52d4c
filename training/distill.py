"""Teacher -> student distillation: a smaller, faster grader that learns the teacher's soft grades.

The box has two CPU cores, so a 2-3 layer student cut from the 6-layer teacher (DistilBERT-style:
the embeddings, the head and a subset of the teacher's layers, copied) is what ships. Its loss is

    alpha * CE(gold labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)
    [+ hidden_loss_weight * PKD]

where ``_T`` is the softmax at temperature T (Hinton et al. 2015) and PKD is the "patient"
hidden-state loss of Sun et al. 2019: the squared distance between the L2-normalised [CLS]
vectors of each student layer and the teacher layer it was copied from (or mapped to).

The teacher runs once over every training pair before training (``teacher_logits``), not at
every step: on CPU one forward per pair is cheaper than one per pair per epoch, and the
student's batches then carry the teacher's logits (``DistillationTrainer`` reads them there).
Unlabelled pairs (field data nobody has graded) get only the teacher's soft targets: their
label is -100 and only the KD term sees them, which is how interactions without teacher labels
still teach the student. Several teachers form an ensemble: the mean of their logits, or of
their probabilities at T.

The student is saved as a normal checkpoint (weights, tokenizer, ``chalkbox.json`` with the
teacher's task, labels and input format; ``metrics.distillation.parent`` names the teacher), so
``chalkbox export build --model STUDENT`` bundles it unchanged.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers import Trainer

from appliance.inference.engine import softmax
from export.checkpoint import CheckpointInfo

from .errors import TrainingError
from .finetune import _encode, _has_cuda
from .student import (  # noqa: F401  (re-exported: the student is part of distillation)
    _teacher_info,
    cut_layers,
    ensemble_info,
    evenly_spaced_layers,
    make_student,
)

log = logging.getLogger(__name__)

ENSEMBLES = ("logits", "probabilities")
UNLABELLED = -100                       # the label of a row only the KD term may see
TEACHER_LOGITS = "teacher_logits"       # batch keys the collator adds beside the tokens
TEACHER_HIDDEN = "teacher_hidden"
# "bert.encoder.layer.3.attention..." / "distilbert.transformer.layer.3.ffn...": a layer's weights


@dataclasses.dataclass
class DistillConfig:
    output_dir: Path
    teachers: tuple[Path, ...]
    layers: tuple[int, ...] | None = None   # teacher layers the student keeps, e.g. (0, 2, 4)
    num_layers: int | None = None           # or this many, evenly spaced
    student_base: str | None = None         # or any smaller HF checkpoint
    alpha: float = 0.5                      # weight of the gold-label CE; 1 - alpha for KD
    temperature: float = 2.0
    ensemble: str = "logits"                # mean of teachers' logits or of probabilities at T
    hidden_loss_weight: float = 0.0         # PKD; needs the teacher's hidden size
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int | None = None           # None: the teacher's
    model_id: str | None = None             # None: the teacher's (it replaces it on the box)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 42
    teacher_batch_size: int = 64
    dataset_snapshot: str | None = None     # None: the teacher's

    def __post_init__(self):
        self.teachers = tuple(Path(t) for t in self.teachers)
        self.layers = tuple(self.layers) if self.layers is not None else None
        chosen = [name for name, value in (("layers", self.layers), ("num_layers", self.num_layers),
                                           ("student_base", self.student_base)) if value is not None]
        problems = [
            (len(self.teachers) >= 1, "give at least one teacher"),
            (len(chosen) <= 1, f"choose one way to make the student, not {' and '.join(chosen)}"),
            (self.layers is None or (len(self.layers) >= 1 and min(self.layers) >= 0
                                     and list(self.layers) == sorted(set(self.layers))),
             "layers must be distinct teacher layer indices in increasing order, e.g. 0,2,4"),
            (self.num_layers is None or self.num_layers >= 1, "num_layers must be >= 1"),
            (0.0 <= self.alpha <= 1.0, "alpha must be in [0, 1]"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.ensemble in ENSEMBLES, f"ensemble must be one of {ENSEMBLES}"),
            (self.hidden_loss_weight >= 0, "hidden_loss_weight must be >= 0"),
            (self.epochs > 0, "epochs must be > 0"),
            (0 < self.learning_rate < 1, "learning_rate must be between 0 and 1"),
            (1 <= self.batch_size <= 4096, "batch_size must be between 1 and 4096"),
            (self.max_length is None or 8 <= self.max_length <= 4096,
             "max_length must be between 8 and 4096"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.teacher_batch_size >= 1, "teacher_batch_size must be >= 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise TrainingError(f"bad distillation setting: {message}",
                                    hint="see 'chalkbox train distill --help'")


# --- the teacher's targets -----------------------------------------------------------------

def _load_teachers(teachers) -> list:
    from .evaluate import CheckpointModel

    return [t if hasattr(t, "logits") else CheckpointModel(Path(t)) for t in teachers]


def _forward(teacher, pairs, batch_size: int, hidden_layers: Sequence[int] = ()):
    """The teacher's logits (n, labels) and, for ``hidden_layers`` (indices into
    ``hidden_states``), its [CLS] vectors (n, layers, hidden); batches of similar length,
    so little padding is computed."""
    import torch

    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    logits = np.zeros((len(pairs), len(teacher.manifest.labels)), dtype=np.float32)
    hidden = (np.zeros((len(pairs), len(hidden_layers), teacher.model.config.hidden_size),
                       dtype=np.float32) if hidden_layers else None)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        first, second = zip(*(pairs[i] for i in rows))
        features = teacher.tokenizer(list(first), list(second), truncation="longest_first",
                                     max_length=teacher.manifest.max_length, padding=True,
                                     return_tensors="pt").to(teacher.device)
        with torch.inference_mode():
            out = teacher.model(**features, output_hidden_states=bool(hidden_layers))
        logits[rows] = out.logits.float().cpu().numpy()
        if hidden is not None:
            hidden[rows] = torch.stack([out.hidden_states[k][:, 0] for k in hidden_layers],
                                       dim=1).float().cpu().numpy()
    return logits, hidden


def combine_logits(per_teacher: Sequence[np.ndarray], *, ensemble: str = "logits",
                   temperature: float = 1.0) -> np.ndarray:
    """One set of logits from several teachers' (n, labels) logits: their mean, or (for
    ``probabilities``) T * log of the mean of softmax(logits / T), so that softmax(result / T)
    is exactly the teachers' mean probability."""
    stacked = np.stack([np.asarray(x, dtype=np.float64) for x in per_teacher])
    if ensemble == "logits" or len(per_teacher) == 1:
        return stacked.mean(axis=0).astype(np.float32)
    if ensemble != "probabilities":
        raise TrainingError(f"unknown ensemble {ensemble!r}", hint=f"one of {ENSEMBLES}")
    mean = np.mean([softmax(x, temperature) for x in stacked], axis=0)
    return (temperature * np.log(np.clip(mean, 1e-12, None))).astype(np.float32)


def teacher_logits(teachers, pairs: Sequence[tuple[str, str]], *, ensemble: str = "logits",
                   temperature: float = 1.0, batch_size: int = 64) -> np.ndarray:
    """The (ensemble) teacher's logits for ``pairs``, computed once. ``teachers``: checkpoint
    dirs or loaded ``CheckpointModel``s."""
    models = _load_teachers(teachers)
    return combine_logits([_forward(m, list(pairs), batch_size)[0] for m in models],
                          ensemble=ensemble, temperature=temperature)


# --- the loss ------------------------------------------------------------------------------

def distillation_loss(student_logits, labels, teacher_logits, *, alpha: float,
                      temperature: float):
    """alpha * CE over the labelled rows + (1 - alpha) * T^2 * KL(teacher_T || student_T) over
    every row (batch means). Rows labelled -100 (unlabelled) meet only the KD term."""
    import torch.nn.functional as F

    labelled = labels != UNLABELLED
    ce = (F.cross_entropy(student_logits[labelled], labels[labelled]) if labelled.any()
          else student_logits.sum() * 0.0)
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                  F.log_softmax(teacher_logits.to(student_logits.dtype) / temperature, dim=-1),
                  log_target=True, reduction="batchmean")
    return alpha * ce + (1 - alpha) * temperature ** 2 * kl


def hidden_state_loss(student_cls, teacher_cls):
    """Patient-KD: mean over rows and layers of |s/|s| - t/|t||^2, on (batch, layers, hidden)."""
    import torch.nn.functional as F

    difference = F.normalize(student_cls, dim=-1) - F.normalize(teacher_cls.to(student_cls.dtype),
                                                                dim=-1)
    return difference.pow(2).sum(dim=-1).mean()


@dataclasses.dataclass(frozen=True)
class DistillLoss:
    alpha: float
    temperature: float
    hidden_loss_weight: float = 0.0
    student_layers: tuple[int, ...] = ()    # indices into the student's hidden_states


class DistillationTrainer(Trainer):
    """A Trainer whose training batches carry the teacher's logits (and [CLS] vectors): only
    the loss changes. Batches without them (evaluation) get plain cross-entropy."""

    def __init__(self, *args, distill_loss: DistillLoss, **kwargs):
        super().__init__(*args, **kwargs)
        self.distill_loss = distill_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch
        import torch.nn.functional as F

        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        teacher = inputs.pop(TEACHER_LOGITS, None)
        teacher_hidden = inputs.pop(TEACHER_HIDDEN, None)
        settings = self.distill_loss
        outputs = model(**inputs, output_hidden_states=teacher_hidden is not None)
        if teacher is None:
            loss = F.cross_entropy(outputs.logits, labels) if labels is not None else None
        else:
            loss = distillation_loss(outputs.logits, labels, teacher, alpha=settings.alpha,
                                     temperature=settings.temperature)
            if teacher_hidden is not None:
                student_cls = torch.stack([outputs.hidden_states[k][:, 0]
                                           for k in settings.student_layers], dim=1)
                loss = loss + settings.hidden_loss_weight * hidden_state_loss(student_cls,
                                                                              teacher_hidden)
                outputs.hidden_states = None     # not logits: keep them out of predictions
        return (loss, outputs) if return_outputs else loss


class _Collator:
    """Dynamic padding of the tokens; the teacher's arrays stacked beside them."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, rows):
        import torch

        extra = [k for k in (TEACHER_LOGITS, TEACHER_HIDDEN) if k in rows[0]]
        batch = self.pad([{k: v for k, v in row.items() if k not in extra} for row in rows])
        for key in extra:
            batch[key] = torch.as_tensor(np.stack([row[key] for row in rows]), dtype=torch.float32)
        return batch


# --- the run -------------------------------------------------------------------------------

@dataclasses.dataclass
class _Student:
    model: Any
    tokenizer: Any
    origin: dict[str, Any]                  # how it was made, for chalkbox.json
    teacher_hidden: tuple[int, ...] = ()    # hidden_states indices the PKD loss pairs up
    student_hidden: tuple[int, ...] = ()


def _build_student(config: DistillConfig, teacher, labels: Sequence[str]) -> _Student:
    """The student, before training: a cut of the first teacher, or ``student_base``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    teacher_layers = teacher.model.config.num_hidden_layers
    if config.student_base:
        if not Path(config.student_base).is_dir():
            raise TrainingError(f"student base {config.student_base} is not a directory",
                                hint="give a local Hugging Face checkpoint path (no hub access)")
        model = AutoModelForSequenceClassification.from_pretrained(
            config.student_base, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True)
        tokenizer = AutoTokenizer.from_pretrained(config.student_base)
        count = model.config.num_hidden_layers
        # each student layer learns from the teacher layer at the same relative depth
        mapped = tuple(round(j * teacher_layers / count) for j in range(1, count + 1))
        student = _Student(model, tokenizer, {"student_base": str(config.student_base)}, mapped,
                           tuple(range(1, count + 1)))
    else:
        layers = config.layers or evenly_spaced_layers(
            teacher_layers, config.num_layers or max(1, teacher_layers // 2))
        model = cut_layers(teacher.model, layers)
        student = _Student(model, teacher.tokenizer, {"layers": list(layers)},
                           tuple(i + 1 for i in layers), tuple(range(1, len(layers) + 1)))
    if config.hidden_loss_weight > 0:
        sizes = (model.config.hidden_size, teacher.model.config.hidden_size)
        if sizes[0] != sizes[1]:
            raise TrainingError(f"the hidden-state loss needs the student's hidden size "
                                f"({sizes[0]}) to equal the teacher's ({sizes[1]})",
                                hint="set --hidden-loss 0, or cut the student from the teacher")
    else:
        student.teacher_hidden = student.student_hidden = ()
    return student


def _checked_labels(labels: Sequence[str], label_index: dict[str, int], what: str) -> list[str]:
    unknown = sorted(set(labels) - set(label_index))
    if unknown:
        raise TrainingError(f"{what} has labels {unknown} the teacher does not predict",
                            hint=f"the teacher's labels are {list(label_index)}")
    return list(labels)


def _labelled(data: tuple[list, list] | None, label_index: dict[str, int], what: str
              ) -> tuple[list, list[str]]:
    """(pairs, labels) of optional labelled data, its labels checked; ([], []) when absent."""
    if not data or not data[0]:
        return [], []
    return list(data[0]), _checked_labels(data[1], label_index, what)


def _fresh_unlabelled(unlabelled, *seen: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Unlabelled pairs, each once, minus those already labelled for training or held out for
    evaluation (a held-out pair taught by the teacher would flatter the student's score)."""
    known = {tuple(p) for pairs in seen for p in pairs}
    fresh = []
    for pair in unlabelled or ():
        pair = tuple(pair)
        if pair not in known:
            known.add(pair)
            fresh.append(pair)
    return fresh


def distill(config: DistillConfig, train: tuple[list, list],
            evaluation: tuple[list, list] | None = None,
            unlabelled: Sequence[tuple[str, str]] | None = None,
            calibration: tuple[list, list] | None = None) -> dict[str, float]:
    """Train a student on labelled ``train`` (pairs, labels) and ``unlabelled`` pairs (the
    teacher's soft targets only); measure it against the teacher on ``evaluation``; fit its
    temperature on ``calibration`` (held-out answers) if given, else on ``evaluation``; save
    it as a self-describing checkpoint in ``config.output_dir``."""
    from transformers import TrainingArguments, set_seed

    if not train or not train[0]:
        raise TrainingError("no labelled training pairs to distil on",
                            hint="check --data (and --eval-fraction, which holds some out)")
    set_seed(config.seed)
    info = ensemble_info(config.teachers)
    label_index = {label: i for i, label in enumerate(info.labels)}
    train_pairs, train_labels = _labelled(train, label_index, "--data")
    eval_pairs, eval_labels = _labelled(evaluation, label_index, "the evaluation data")
    cal_pairs, cal_labels = _labelled(calibration, label_index, "the calibration data")
    extra = _fresh_unlabelled(unlabelled, train_pairs, eval_pairs, cal_pairs)
    teachers = _load_teachers(config.teachers)
    student = _build_student(config, teachers[0], info.labels)
    pairs = train_pairs + extra
    log.info("teacher forward over %d pairs (%d unlabelled), %d teacher(s)", len(pairs),
             len(extra), len(teachers))
    outputs = [_forward(t, pairs, config.teacher_batch_size,
                        student.teacher_hidden if i == 0 else ()) for i, t in enumerate(teachers)]
    targets = combine_logits([o[0] for o in outputs], ensemble=config.ensemble,
                             temperature=config.temperature)
    teacher_eval = (combine_logits([_forward(t, eval_pairs, config.teacher_batch_size)[0]
                                    for t in teachers], ensemble=config.ensemble,
                                   temperature=config.temperature) if eval_pairs else None)
    hidden = outputs[0][1]
    del teachers, outputs      # the student trains alone; give the memory back

    max_length = config.max_length or info.max_length
    rows = _encode(student.tokenizer, pairs, train_labels + [None] * len(extra),
                   {**label_index, None: UNLABELLED}, max_length)
    for i, row in enumerate(rows):
        row[TEACHER_LOGITS] = targets[i]
        if hidden is not None:
            row[TEACHER_HIDDEN] = hidden[i]
    output_dir = Path(config.output_dir)
    args = TrainingArguments(
        output_dir=str(output_dir / "trainer"), num_train_epochs=config.epochs,
        learning_rate=config.learning_rate, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=64, weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio, seed=config.seed, save_strategy="no",
        logging_steps=10, report_to=[], group_by_length=True, dataloader_num_workers=0,
        remove_unused_columns=False,    # else the Trainer drops the teacher's columns
        use_cpu=not _has_cuda())
    trainer = DistillationTrainer(
        model=student.model, args=args, train_dataset=rows,
        data_collator=_Collator(student.tokenizer),
        distill_loss=DistillLoss(config.alpha, config.temperature, config.hidden_loss_weight,
                                 student.student_hidden))
    trainer.train()
    trainer.save_model(str(output_dir))
    student.tokenizer.save_pretrained(str(output_dir))
    teacher_dirs = [str(t) for t in config.teachers]
    provenance = {"parent": teacher_dirs[0], "teachers": teacher_dirs, **student.origin,
                  "alpha": config.alpha, "temperature": config.temperature,
                  "ensemble": config.ensemble, "hidden_loss_weight": config.hidden_loss_weight,
                  "epochs": config.epochs, "labelled_pairs": len(train_pairs),
                  "unlabelled_pairs": len(extra), "trained": True}
    saved = CheckpointInfo(task=info.task, labels=info.labels, positive_label=info.positive_label,
                           input_format=info.input_format, max_length=max_length,
                           model_id=config.model_id or info.model_id, base_model=teacher_dirs[0],
                           dataset_snapshot=config.dataset_snapshot or info.dataset_snapshot,
                           metrics={"distillation": provenance})
    saved.save(output_dir)
    from .distill_eval import measure_student

    return measure_student(saved, output_dir, (eval_pairs, eval_labels), teacher_eval,
                           (cal_pairs, cal_labels), label_index, config.teacher_batch_size)
