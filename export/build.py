"""Build a signed model bundle from a trained checkpoint: export, quantize, check, sign.

Everything happens in a hidden staging directory beside the destination; only a
bundle that passed every check and verifies with the fleet key is renamed into
place. A failed step leaves no bundle behind.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from appliance.bundle import (MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE, ModelManifest,
                              verify_bundle)
from appliance.fsutil import describe_files, publish_dir
from appliance.inference.engine import OnnxModel
from appliance.records import utc_now

from .checkpoint import read_checkpoint_info
from .checks import CheckLimits, measure
from .errors import ExportError
from .keys import public_key_path_for, sign_bundle
from .onnx import TARGETS, detect_target, export_onnx, quantize_int8


@dataclasses.dataclass
class BuildRequest:
    model_dir: Path
    out_dir: Path
    signing_key: Path
    check_pairs: Sequence[tuple[str, str]]
    check_labels: Sequence[str] | None = None
    target: str | None = None          # None: the CPU this runs on
    quantize: bool = True
    version: str | None = None
    model_id: str | None = None
    parent_version: str | None = None
    limits: CheckLimits = dataclasses.field(default_factory=CheckLimits)
    review_below: float = 0.7


def _tokenizer_json(model_dir: Path, dest: Path) -> None:
    source = Path(model_dir) / TOKENIZER_FILE
    if source.is_file():
        shutil.copyfile(source, dest)
        return
    from transformers import AutoTokenizer  # a slow tokenizer: let transformers convert it

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    if not tokenizer.is_fast:
        raise ExportError(f"{model_dir} has no fast tokenizer to ship as tokenizer.json")
    tokenizer.backend_tokenizer.save(str(dest))


def check_target(target: str | None) -> str:
    """The quantization target, checked before minutes of export, not after."""
    target = target or detect_target()
    if target not in TARGETS:
        raise ExportError(f"unsupported quantization target {target!r}",
                          hint=f"use one of: {', '.join(TARGETS)}")
    return target


@contextlib.contextmanager
def workspace(out_dir: Path):
    """(staging, work) beside ``out_dir``: staging becomes the bundle, work is scratch.
    Whatever fails, no bundle (and no scratch) is left behind."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".staging-{out_dir.name}"
    work = out_dir.parent / f".work-{out_dir.name}"
    for path in (staging, work):
        shutil.rmtree(path, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging, work
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def seal(staging: Path, manifest: ModelManifest, signing_key: Path, out_dir: Path) -> ModelManifest:
    """Write the manifest (with every file's sha256), sign it, verify as a box would, publish."""
    manifest = dataclasses.replace(manifest, files=describe_files(staging, [MODEL_FILE,
                                                                            TOKENIZER_FILE]))
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest.to_dict(), indent=2,
                                                    sort_keys=True) + "\n")
    sign_bundle(staging, signing_key)
    verify_bundle(staging, public_key_path_for(signing_key))
    publish_dir(staging, Path(out_dir))
    return manifest


def new_version() -> str:
    return time.strftime("%Y%m%d.%H%M%S", time.gmtime())


def build_bundle(request: BuildRequest) -> ModelManifest:
    info = read_checkpoint_info(request.model_dir)
    target = check_target(request.target)
    with workspace(request.out_dir) as (staging, work):
        fp32_path = export_onnx(request.model_dir, work / "fp32")
        _tokenizer_json(request.model_dir, staging / TOKENIZER_FILE)
        manifest = ModelManifest(
            model_id=request.model_id or info.model_id, version=request.version or new_version(),
            task=info.task, labels=info.labels, max_length=info.max_length,
            input_format=info.input_format, positive_label=info.positive_label,
            temperature=info.temperature, thresholds={"review_below": request.review_below},
            metrics=dict(info.metrics), created_at=utc_now(),
            parent_version=request.parent_version, dataset_snapshot=info.dataset_snapshot,
            base_model=info.base_model,
            quantization=f"int8-dynamic-{target}" if request.quantize else "fp32")
        shutil.copyfile(staging / TOKENIZER_FILE, work / "fp32" / TOKENIZER_FILE)
        fp32 = OnnxModel(work / "fp32", manifest)
        int8 = None
        if request.quantize:
            quantize_int8(work / "fp32", staging / MODEL_FILE, target)
            int8 = OnnxModel(staging, manifest)
        else:
            shutil.copyfile(fp32_path, staging / MODEL_FILE)
        checks = measure(request.model_dir, fp32, int8, request.check_pairs,
                         request.check_labels, request.limits)
        checks.update(fp32_bytes=fp32_path.stat().st_size,
                      bundle_model_bytes=(staging / MODEL_FILE).stat().st_size)
        manifest = dataclasses.replace(manifest, metrics={**manifest.metrics, "export": checks})
        if manifest.task == "match" and request.check_labels is not None:
            manifest = _with_answer_threshold(manifest, int8 or fp32, request)
        return seal(staging, manifest, request.signing_key, request.out_dir)


def _with_answer_threshold(manifest: ModelManifest, shipped: OnnxModel,
                           request: BuildRequest) -> ModelManifest:
    """A matcher's bundle says above which probability the box answers (export.thresholds)."""
    from appliance.ask import ANSWER_ABOVE
    from appliance.inference.engine import softmax

    from .thresholds import answer_threshold_for

    positive = manifest.labels.index(manifest.positive_label)
    pairs = list(request.check_pairs)
    logits = np.concatenate([shipped.logits(pairs[i:i + 32]) for i in range(0, len(pairs), 32)])
    probability = softmax(logits, manifest.temperature)[:, positive]
    threshold = answer_threshold_for(probability, [label == manifest.positive_label
                                                   for label in request.check_labels])
    if threshold is None:
        return manifest
    return dataclasses.replace(manifest, thresholds={**manifest.thresholds,
                                                     ANSWER_ABOVE: threshold})
