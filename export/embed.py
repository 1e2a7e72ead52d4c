"""The sentence-embedding bundle for the first stage of "ask" (task "embed").

all-MiniLM-L6-v2 (or any BERT-like checkpoint) exported as a feature extractor;
the box mean-pools and normalises (appliance.inference.engine.Embedder), as
sentence-transformers does. Gated like a classifier: fp32 ONNX must match PyTorch,
and int8 must keep the geometry (cosine with fp32, and the same nearest neighbours).
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from appliance.bundle import MODEL_FILE, TOKENIZER_FILE, ModelManifest
from appliance.inference.engine import Embedder
from appliance.records import utc_now

from .build import _tokenizer_json, check_target, new_version, seal, workspace
from .errors import ExportError
from .onnx import export_onnx, quantize_int8


RETRIEVE_K = 5


@dataclasses.dataclass
class EmbedLimits:
    max_fp32_delta: float = 1e-4       # fp32 ONNX vs PyTorch, per vector component
    min_mean_cosine: float = 0.98      # int8 vs fp32
    min_neighbour_agreement: float = 0.95  # fp32's nearest within int8's top RETRIEVE_K


def torch_embeddings(model_dir: Path, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    features = embedder.encode(list(texts))
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in features.items()}).last_hidden_state
    mask = torch.from_numpy(features["attention_mask"]).unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def measure_embedder(model_dir: Path, fp32: Embedder, int8: Embedder, texts: Sequence[str],
                     limits: EmbedLimits) -> dict[str, float]:
    if len(texts) < 2:
        raise ExportError("the embedding checks need at least two real texts")
    a, b = fp32.embed(texts), int8.embed(texts)
    figures = {"check_texts": len(texts),
               "fp32_max_delta": float(np.abs(a - torch_embeddings(model_dir, fp32, texts)).max()),
               "int8_mean_cosine": float((a * b).sum(axis=1).mean())}
    sims_a, sims_b = a @ a.T, b @ b.T
    np.fill_diagonal(sims_a, -1)
    np.fill_diagonal(sims_b, -1)
    # Retrieval hands its top few to the reranker: what must survive int8 is that fp32's
    # nearest neighbour is still among int8's nearest RETRIEVE_K.
    top_b = np.argsort(-sims_b, axis=1)[:, :RETRIEVE_K]
    figures["int8_neighbour_agreement"] = float(
        np.mean([a_best in row for a_best, row in zip(sims_a.argmax(1), top_b)]))
    figures["int8_top1_agreement"] = float((sims_a.argmax(1) == sims_b.argmax(1)).mean())
    for key, limit, worse in (("fp32_max_delta", limits.max_fp32_delta, np.greater),
                              ("int8_mean_cosine", limits.min_mean_cosine, np.less),
                              ("int8_neighbour_agreement", limits.min_neighbour_agreement, np.less)):
        if worse(figures[key], limit):
            raise ExportError(f"embedding check failed: {key} = {figures[key]:.5f} "
                              f"(limit {limit})", hint="try another --target, or keep fp32")
    return figures


def build_embed_bundle(model_dir: Path, out_dir: Path, signing_key: Path, check_texts: Sequence[str],
                       *, target: str | None = None, version: str | None = None,
                       model_id: str = "embed", max_length: int = 128,
                       limits: EmbedLimits | None = None) -> ModelManifest:
    target = check_target(target)
    with workspace(out_dir) as (staging, work):
        fp32_path = export_onnx(model_dir, work / "fp32", task="feature-extraction")
        _tokenizer_json(model_dir, staging / TOKENIZER_FILE)
        shutil.copyfile(staging / TOKENIZER_FILE, work / "fp32" / TOKENIZER_FILE)
        manifest = ModelManifest(
            model_id=model_id, version=version or new_version(), task="embed", labels=(),
            max_length=max_length, input_format="text", positive_label="",
            created_at=utc_now(), base_model=str(model_dir),
            quantization=f"int8-dynamic-{target}")
        quantize_int8(work / "fp32", staging / MODEL_FILE, target)
        checks = measure_embedder(model_dir, Embedder(work / "fp32", manifest),
                                  Embedder(staging, manifest), check_texts,
                                  limits or EmbedLimits())
        checks.update(fp32_bytes=fp32_path.stat().st_size,
                      bundle_model_bytes=(staging / MODEL_FILE).stat().st_size)
        manifest = dataclasses.replace(manifest, metrics={"export": checks})
        return seal(staging, manifest, signing_key, out_dir)
