"""The model bundle: what the centre ships and the box trusts only after checking.

A bundle is a directory with ``model.onnx``, ``tokenizer.json``, ``manifest.json``
and ``manifest.sig`` (a detached ed25519 signature, base64, over the exact bytes
of manifest.json). The manifest lists the sha256 of every other file, so one
signature check plus the checksums cover the whole bundle. The box never loads
a bundle that has not passed :func:`verify_bundle` with the fleet's public key.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from pathlib import Path
from typing import Any

from . import validate as v
from .errors import BundleError, FormatError
from .fsutil import first_file_problem

FORMAT = "chalkbox-model"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
TASKS = ("grade", "match", "embed")
#: How the pair fed to the cross-encoder is built; see appliance.inference.pairs.
INPUT_FORMATS = ("reference|answer", "question+reference|answer", "question|answer", "text")
MAX_MANIFEST_BYTES = 256 * 1024


@dataclasses.dataclass(frozen=True)
class ModelManifest:
    model_id: str
    version: str
    task: str
    labels: tuple[str, ...]
    max_length: int
    input_format: str
    positive_label: str
    temperature: float = 1.0
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    files: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    created_at: str | None = None
    parent_version: str | None = None
    dataset_snapshot: str | None = None
    quantization: str | None = None
    base_model: str | None = None
    format_version: int = FORMAT_VERSION

    @property
    def name(self) -> str:
        """Directory name of an installed bundle: unique per model and version."""
        return f"{self.model_id}-{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["labels"] = list(self.labels)
        data["format"] = FORMAT
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "ModelManifest":
        data = v.require_mapping(data, "manifest")
        version = v.format_header(data, FORMAT, FORMAT_VERSION,
                                  "update Chalkbox on the box before installing this model")
        task = v.choice(data, "task", TASKS)
        if task == "embed":  # a sentence encoder: vectors, no labels
            labels = tuple(v.string_list(data, "labels", max_items=0, max_len=40, min_items=0))
            positive = v.text(data, "positive_label", max_len=40, required=False, default="")
        else:
            labels = tuple(v.string_list(data, "labels", max_items=16, max_len=40, min_items=2))
            positive = v.text(data, "positive_label", max_len=40)
        if task != "embed" and positive not in labels:
            raise FormatError(f"'positive_label' {positive!r} is not one of the labels",
                              field="positive_label")
        thresholds = {k: v.number(data["thresholds"], k, minimum=0.0, maximum=1.0,
                                  prefix="thresholds.")
                      for k in v.require_mapping(data.get("thresholds", {}), "thresholds")}
        files = v.file_table(data, REQUIRED_FILES)
        return cls(
            model_id=v.text(data, "model_id", max_len=64),
            version=v.text(data, "version", max_len=64),
            task=task,
            labels=labels,
            max_length=v.integer(data, "max_length", minimum=8, maximum=4096),
            input_format=v.choice(data, "input_format", INPUT_FORMATS),
            positive_label=positive,
            temperature=v.number(data, "temperature", minimum=0.01, maximum=100.0,
                                 required=False, default=1.0),
            thresholds=thresholds,
            metrics=dict(v.require_mapping(data.get("metrics", {}), "metrics")),
            files=files,
            created_at=v.text(data, "created_at", max_len=40, required=False),
            parent_version=v.text(data, "parent_version", max_len=64, required=False),
            dataset_snapshot=v.text(data, "dataset_snapshot", max_len=128, required=False),
            quantization=v.text(data, "quantization", max_len=64, required=False),
            base_model=v.text(data, "base_model", max_len=512, required=False),
            format_version=version,
        )


def load_public_key(path: Path):
    """The fleet's ed25519 public key (PEM) that every installed bundle must verify against."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"fleet public key {path} not found",
                          hint="provision the box with --public-key, or copy the fleet key there")
    try:
        key = load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise BundleError(f"{path} is not a PEM public key ({exc})",
                          hint="use the .pub.pem file written by 'chalkbox export keygen'")
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an ed25519 key", hint="use 'chalkbox export keygen'")
    return key


def verify_bundle(bundle_dir: Path, public_key_path: Path) -> ModelManifest:
    """Signature, then manifest, then every file's sha256. Raises BundleError on any failure."""
    from cryptography.exceptions import InvalidSignature

    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"model bundle {bundle_dir} is not a directory",
                          hint="give the directory made by 'chalkbox export build'")
    manifest_path, sig_path = bundle_dir / MANIFEST_FILE, bundle_dir / SIGNATURE_FILE
    for path in (manifest_path, sig_path):
        if not path.is_file():
            raise BundleError(f"{bundle_dir} has no {path.name}",
                              hint="only signed bundles from 'chalkbox export build' can be installed")
    manifest_bytes = manifest_path.read_bytes()
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{manifest_path} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
        load_public_key(public_key_path).verify(signature, manifest_bytes)
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleError(f"the signature of {bundle_dir} does not verify with {public_key_path}",
                          hint="the bundle was signed with another key or was tampered with; "
                               "get a bundle signed with this fleet's key")
    manifest = _parse_manifest(manifest_path, manifest_bytes)
    problem = first_file_problem(bundle_dir, manifest.files)
    if problem:
        raise BundleError(f"in {bundle_dir}, {problem} (its signed checksum)",
                          hint="the bundle is damaged or was changed; copy it again")
    return manifest


def _parse_manifest(path: Path, raw: bytes) -> ModelManifest:
    try:
        return ModelManifest.from_dict(json.loads(raw))
    except (ValueError, RecursionError) as exc:  # FormatError is not a ValueError: bad JSON
        raise BundleError(f"{path} is not valid JSON ({type(exc).__name__})")
    except FormatError as exc:
        raise BundleError(f"{path}: {exc.message}", hint=exc.hint)


def read_manifest_unverified(bundle_dir: Path) -> ModelManifest:
    """For listing and diagnostics only: never use the result to decide what to run."""
    path = Path(bundle_dir) / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}")
    return _parse_manifest(path, raw)
