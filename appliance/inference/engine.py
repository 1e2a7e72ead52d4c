"""One loaded model bundle: tokenizer + onnxruntime session -> calibrated probabilities."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from ..bundle import MODEL_FILE, TOKENIZER_FILE, ModelManifest
from ..errors import BundleError
from .session import create_session


def _pad_token(tokenizer: Tokenizer) -> tuple[int, str]:
    if tokenizer.padding:
        return tokenizer.padding["pad_id"], tokenizer.padding["pad_token"]
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id, token
    return 0, tokenizer.id_to_token(0) or "[PAD]"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


class OnnxModel:
    """Thread-safe: onnxruntime sessions may run concurrently; the tokenizer is not shared
    mutable state once configured."""

    def __init__(self, bundle_dir: Path, manifest: ModelManifest, threads: int = 0):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest
        try:
            self.tokenizer = Tokenizer.from_file(str(self.bundle_dir / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise BundleError(f"cannot load the tokenizer of {bundle_dir}: {exc}")
        self.tokenizer.enable_truncation(manifest.max_length)
        pad_id, pad_token = _pad_token(self.tokenizer)
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        try:
            self.session = create_session(self.bundle_dir / MODEL_FILE, threads)
        except Exception as exc:
            raise BundleError(f"onnxruntime cannot load {bundle_dir / MODEL_FILE}: {exc}")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.on_batch = None  # callback(size, seconds) after every run: metrics

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def encode(self, pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(pairs))
        features = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: features[name] for name in self.input_names}

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, len(self.manifest.labels)), dtype=np.float32)
        return self._run(self.encode(pairs))

    def _run(self, features: dict[str, np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        logits = self.session.run(None, features)[0]
        if self.on_batch is not None:
            self.on_batch(len(features["input_ids"]), time.perf_counter() - started)
        return logits

    def logits_by_length(self, pairs: Sequence[tuple[str, str]], chunk: int) -> np.ndarray:
        """Logits of many pairs, run in chunks of similar length: a batch pads every pair to
        its longest, so mixing a 20-token answer with a 120-token one wastes most of a run."""
        features = self.encode(pairs)
        lengths = features["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(pairs), len(self.manifest.labels)), dtype=np.float32)
        for start in range(0, len(order), chunk):
            rows = order[start:start + chunk]
            width = int(lengths[rows].max())
            out[rows] = self._run({k: v[rows, :width] for k, v in features.items()})
        return out

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return softmax(self.logits(pairs), self.manifest.temperature)

    def close(self) -> None:
        """Nothing to stop; BatchedModel overrides this."""


class BatchedModel(OnnxModel):
    """An OnnxModel whose runs go through a MicroBatcher: same interface, shared batches.

    Runs are cut into chunks of ``chunk`` pairs of similar length. Measured on 2 cores with
    the int8 MiniLM-L6 grader, 40 threads of one-pair requests: 455 grades/s unbatched;
    batched 297 (chunks of 8), 318 (32), 423 (4): padding and one run at a time cost more
    than a batch saves here, so chunks are small by default.
    """

    def __init__(self, bundle_dir: Path, manifest: ModelManifest, threads: int = 0,
                 max_size: int = 32, max_wait_s: float = 0.004, chunk: int = 4, runners: int = 1):
        super().__init__(bundle_dir, manifest, threads)
        from .batcher import MicroBatcher

        self._batcher = MicroBatcher(lambda pairs: self.logits_by_length(pairs, chunk),
                                     max_size, max_wait_s, name=f"batcher-{manifest.name}",
                                     runners=runners)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return super().logits(pairs)
        return self._batcher(list(pairs))

    def close(self) -> None:
        self._batcher.close()


class Embedder(OnnxModel):
    """A sentence encoder bundle (task "embed"): mean-pooled, L2-normalised vectors,
    as sentence-transformers' all-MiniLM-L6-v2 computes them."""

    #: Texts per encoder run when embedding many (a knowledge base): a run pads every text
    #: to its longest, so 2,000 FAQ questions in one run cost 2,000 x the longest question.
    CHUNK = 32

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        features = self.encode(list(texts))
        lengths = features["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), self.CHUNK):
            rows = order[start:start + self.CHUNK]
            width = int(lengths[rows].max())
            chunk = {k: v[rows, :width] for k, v in features.items()}
            hidden = self.session.run(None, chunk)[0]
            mask = chunk["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            if out is None:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.clip(norms, 1e-12, None)).astype(np.float32)
