"""Evaluating a PyTorch checkpoint on SemEval / WikiQA: ``chalkbox train evaluate``.

The metrics, the dataset readers and the evaluation loop are in ``export/evaluate.py`` (see its
docstring: ``chalkbox export evaluate`` measures a verified bundle with the same code and may not
import training). This module re-exports them and adds :class:`CheckpointModel`, the adapter
that gives a Hugging Face checkpoint directory the two things ``evaluate_model`` needs, as the
box's ``OnnxModel`` has them: ``.manifest`` (from the checkpoint's ``chalkbox.json`` through
``export.checkpoint.read_checkpoint_info``) and ``.probabilities(pairs)`` (softmax of the
logits divided by the checkpoint's temperature).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from appliance.bundle import ModelManifest
from appliance.inference.engine import softmax
from export.checkpoint import read_checkpoint_info
from export.errors import ExportError
from export.datasets import FORMATS, load_dataset  # noqa: F401  (re-exported)
from export.evaluate import evaluate_model, render  # noqa: F401  (re-exported)

from .errors import TrainingError


class CheckpointModel:
    """A PyTorch sequence classifier directory with the interface of the box's OnnxModel."""

    def __init__(self, model_dir: Path, device: str | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model_dir = Path(model_dir)
        info = read_checkpoint_info(model_dir)
        if info.task == "embed":
            raise TrainingError(f"{model_dir} is a sentence encoder; it has no labels to evaluate",
                                hint="evaluate a grade or match checkpoint")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot load the checkpoint {model_dir}: {exc}",
                                hint="point --model at a directory written by 'chalkbox train'")
        id2label = getattr(self.model.config, "id2label", None) or {}
        config_labels = tuple(id2label[i] for i in sorted(id2label))
        if config_labels and set(config_labels) == set(info.labels) and config_labels != info.labels:
            raise TrainingError(f"{model_dir}: config.json orders the labels {config_labels}, "
                                f"chalkbox.json {info.labels}",
                                hint="the logits follow config.json; fix chalkbox.json")
        if self.model.config.num_labels != len(info.labels):
            raise TrainingError(f"{model_dir} has {self.model.config.num_labels} outputs but "
                                f"{len(info.labels)} labels in chalkbox.json")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.model_dir = model_dir
        self.manifest = ModelManifest(
            model_id=info.model_id, version=f"checkpoint:{model_dir.name}", task=info.task,
            labels=info.labels, max_length=info.max_length, input_format=info.input_format,
            positive_label=info.positive_label, temperature=info.temperature,
            metrics=info.metrics, dataset_snapshot=info.dataset_snapshot,
            base_model=info.base_model, quantization="fp32-pytorch")

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        import torch

        if not pairs:
            return np.zeros((0, len(self.manifest.labels)), dtype=np.float32)
        first, second = zip(*pairs)
        features = self.tokenizer(list(first), list(second), truncation="longest_first",
                                  max_length=self.manifest.max_length, padding=True,
                                  return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return self.model(**features).logits.float().cpu().numpy()

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return softmax(self.logits(pairs), self.manifest.temperature)


def _checkpoint_labels(model_dir: Path, fmt: str) -> tuple[str, ...] | None:
    """The label set a SemEval split is read with: the checkpoint's (3-/5-way models read
    those labels). None (the 2-way default) when the directory cannot tell; CheckpointModel
    then says what is wrong with it."""
    if fmt != "semeval":
        return None
    try:
        return read_checkpoint_info(Path(model_dir)).labels
    except ExportError:
        return None


def evaluate_checkpoint(model_dir: Path, data: Path, fmt: str, *, limit: int | None = None,
                        batch_size: int = 32) -> dict[str, Any]:
    """The metrics of a PyTorch checkpoint on a SemEval or WikiQA split (the dataset is read,
    and a wrong path or format refused, before the model is loaded)."""
    from export.datasets import DatasetError

    try:
        dataset = load_dataset(Path(data), fmt, _checkpoint_labels(model_dir, fmt))
    except DatasetError as exc:
        raise TrainingError(exc.message, hint=exc.hint) from None
    return evaluate_model(CheckpointModel(model_dir), dataset, fmt, limit=limit,
                          batch_size=batch_size)
