"""Checks that gate every bundle: what ships must behave like what was trained.

All measured through the box's own inference code (appliance.inference), so the
numbers describe exactly what a classroom will get.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from appliance.inference.engine import OnnxModel

from .errors import ExportError


@dataclasses.dataclass(frozen=True)
class CheckLimits:
    max_logit_delta: float = 1e-4      # fp32 ONNX vs PyTorch
    min_agreement: float = 0.98        # int8 vs fp32 predictions
    max_accuracy_drop: float = 0.01    # int8 vs fp32, on labelled check data


def load_torch_model(model_dir):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()


def torch_logits(model, features: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(**{k: torch.from_numpy(val) for k, val in features.items()}).logits.numpy()


def tokenizer_parity(model_dir, box_model: OnnxModel, pairs: Sequence[tuple[str, str]]) -> None:
    """The box's tokenizers setup must give the ids the trainer's tokenizer gave."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    first, second = zip(*pairs)
    expected = tokenizer(list(first), list(second), truncation=True,
                         max_length=box_model.manifest.max_length)["input_ids"]
    got = [e.ids[:sum(e.attention_mask)] for e in box_model.tokenizer.encode_batch(list(pairs))]
    for index, (want, have) in enumerate(zip(expected, got)):
        if list(want) != list(have):
            raise ExportError(f"the box tokenizes check pair {index} differently from training",
                              hint="the tokenizer.json does not match the checkpoint's tokenizer")


def measure(model_dir, fp32: OnnxModel, int8: OnnxModel | None,
            pairs: Sequence[tuple[str, str]], labels: Sequence[str] | None,
            limits: CheckLimits, batch_size: int = 32) -> dict[str, float]:
    """Run every check; return the figures (for the manifest) or raise ExportError."""
    if not pairs:
        raise ExportError("no check data: the export checks need real input pairs")
    tokenizer_parity(model_dir, fp32, pairs)
    reference = load_torch_model(model_dir)
    deltas, fp32_logits, int8_logits = [], [], []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        features = fp32.encode(batch)
        onnx_out = fp32.session.run(None, features)[0]
        deltas.append(np.abs(onnx_out - torch_logits(reference, features)).max())
        fp32_logits.append(onnx_out)
        if int8 is not None:
            int8_logits.append(int8.logits(batch))
    figures = {"check_pairs": len(pairs), "fp32_max_logit_delta": float(max(deltas))}
    if figures["fp32_max_logit_delta"] > limits.max_logit_delta:
        raise ExportError(f"fp32 ONNX differs from PyTorch by {figures['fp32_max_logit_delta']:.2e} "
                          f"(limit {limits.max_logit_delta:.0e})")
    fp32_pred = np.concatenate(fp32_logits).argmax(axis=1)
    if labels is not None:
        truth = np.array([fp32.manifest.labels.index(label) for label in labels])
        figures["fp32_accuracy"] = float((fp32_pred == truth).mean())
    if int8 is not None:
        int8_pred = np.concatenate(int8_logits).argmax(axis=1)
        figures["int8_agreement"] = float((int8_pred == fp32_pred).mean())
        if labels is not None:
            figures["int8_accuracy"] = float((int8_pred == truth).mean())
            drop = figures["fp32_accuracy"] - figures["int8_accuracy"]
            if drop > limits.max_accuracy_drop:
                raise ExportError(f"int8 loses {drop:.3f} accuracy against fp32 "
                                  f"(limit {limits.max_accuracy_drop})",
                                  hint="try another --target, or keep the model in fp32")
        if figures["int8_agreement"] < limits.min_agreement:
            raise ExportError(f"int8 agrees with fp32 on only {figures['int8_agreement']:.1%} of "
                              f"predictions (limit {limits.min_agreement:.0%})",
                              hint="try another --target, or keep the model in fp32")
    return figures
