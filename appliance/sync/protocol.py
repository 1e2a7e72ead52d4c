"""What a box and the centre say to each other, by network or on a USB stick (version 1).

The box owns this contract; the centre's ingest server and `chalkbox train ingest`
speak it through these functions. See docs/formats.md, "Sync protocol".

Network (HTTP, JSON; every request carries ``Authorization: Bearer <box token>``
and ``X-Chalkbox-Box: <box id>``):

- ``POST /api/v1/sync/push``: body ``{"manifest": <sync manifest>, "records": <JSON-lines
  text>}``; the manifest's sha256 covers the UTF-8 bytes of ``records``. The centre
  verifies, ingests idempotently, and answers 200 with an acknowledgement (below).
  Chunks of at most ``CHUNK_RECORDS`` records and ``MAX_PUSH_BYTES`` bytes.
- ``GET /api/v1/models/latest?task=grade``: ``{"name": ..., "manifest": {...},
  "files": [names]}`` of the newest published bundle for the box's school, or 404.
- ``GET /api/v1/models/<name>/<file>``: one file of that bundle (manifest.json,
  manifest.sig, model.onnx, tokenizer.json). The box verifies the signature itself.
- ``POST /api/v1/boxes/report``: ``{"models": {task: version}, "health": {...}}``.

An acknowledgement names the records the centre now holds:
``{"box_id", "first_id", "last_id", "count", "outbox_from", "outbox_to", "added",
"duplicates"}``. On a USB stick the centre writes ``chalkbox-ack-<box id>.json``
(``{"format": "chalkbox-ack", "format_version": 1, "box_id", "created_at",
"acks": [ack, ...]}``) with ``.sig`` beside it: an ed25519 signature by the fleet
key, which the box checks with the fleet public key it already trusts for models.
Model bundles for a school go on the stick under
``chalkbox-models/<school id>/<task>/<bundle name>/``; the box verifies them too.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from pathlib import Path
from typing import Any

from .. import validate as v
from ..errors import FormatError
from ..fsutil import read_bounded
from ..records import InteractionRecord, utc_now
from ..syncbundle import decode_records, parse_manifest

PUSH_PATH = "/api/v1/sync/push"
MODELS_LATEST_PATH = "/api/v1/models/latest"
MODEL_FILE_PATH = "/api/v1/models/{name}/{file}"
REPORT_PATH = "/api/v1/boxes/report"
BOX_HEADER = "X-Chalkbox-Box"
CHUNK_RECORDS = 500
MAX_PUSH_BYTES = 8 * 1024 * 1024
ACK_FORMAT = "chalkbox-ack"
ACK_FORMAT_VERSION = 1
MODELS_DIR_ON_STICK = "chalkbox-models"
MAX_ACK_BYTES = 4 * 1024 * 1024


def ack_file_name(box_id: str) -> str:
    return f"chalkbox-ack-{box_id}.json"


@dataclasses.dataclass(frozen=True)
class Ack:
    box_id: str
    first_id: str
    last_id: str
    count: int
    outbox_from: int | None = None
    outbox_to: int | None = None
    added: int = 0
    duplicates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: val for k, val in dataclasses.asdict(self).items() if val is not None}

    @classmethod
    def from_dict(cls, data: Any) -> "Ack":
        data = v.require_mapping(data, "ack")
        return cls(box_id=v.text(data, "box_id", max_len=64),
                   first_id=v.text(data, "first_id", max_len=64),
                   last_id=v.text(data, "last_id", max_len=64),
                   count=v.integer(data, "count", minimum=0),
                   outbox_from=v.integer(data, "outbox_from", minimum=0, required=False),
                   outbox_to=v.integer(data, "outbox_to", minimum=0, required=False),
                   added=v.integer(data, "added", minimum=0, required=False, default=0),
                   duplicates=v.integer(data, "duplicates", minimum=0, required=False, default=0))

    @classmethod
    def for_manifest(cls, manifest: dict[str, Any], added: int) -> "Ack":
        return cls(box_id=manifest["box_id"], first_id=manifest["first_id"],
                   last_id=manifest["last_id"], count=manifest["count"],
                   outbox_from=manifest.get("outbox_from"), outbox_to=manifest.get("outbox_to"),
                   added=added, duplicates=manifest["count"] - added)


# --- network push ------------------------------------------------------------
def push_payload(manifest: dict[str, Any], data: bytes) -> bytes:
    return json.dumps({"manifest": manifest, "records": data.decode("utf-8")},
                      ensure_ascii=False).encode("utf-8")


def parse_push(payload: Any) -> tuple[dict[str, Any], list[InteractionRecord]]:
    """Validate a push body (already JSON-decoded): the manifest, then every record."""
    payload = v.require_mapping(payload, "body")
    v.no_unknown_fields(payload, ("manifest", "records"), "body")
    manifest = parse_manifest(payload.get("manifest"))
    text = payload.get("records")
    if not isinstance(text, str):
        raise FormatError("'records' must be the JSON-lines text of the records", field="records")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's \ud800): not text
        raise FormatError("'records' is not valid Unicode text", field="records")
    return manifest, decode_records(manifest, data)


# --- USB acknowledgement file -----------------------------------------------------
def ack_document(box_id: str, acks: list[Ack]) -> bytes:
    return json.dumps({"format": ACK_FORMAT, "format_version": ACK_FORMAT_VERSION,
                       "box_id": box_id, "created_at": utc_now(),
                       "acks": [a.to_dict() for a in acks]}, indent=2).encode("utf-8")


def read_ack_file(path: Path, public_key_path: Path) -> list[Ack]:
    """The acks in a signed ack file; FormatError if the signature or content is bad."""
    from cryptography.exceptions import InvalidSignature

    from ..bundle import load_public_key

    path = Path(path)
    sig_path = path.with_name(path.name + ".sig")
    try:
        raw = read_bounded(path, MAX_ACK_BYTES)
        signature = base64.b64decode(read_bounded(sig_path, 1024).strip(), validate=True)
        load_public_key(public_key_path).verify(signature, raw)
    except (OSError, InvalidSignature, binascii.Error, ValueError):
        raise FormatError(f"{path.name} is not signed by this fleet's key", field="signature",
                          hint="ingest the stick at the centre again")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise FormatError(f"{path.name} is not JSON", field="ack")
    data = v.require_mapping(data, "ack file")
    v.format_header(data, ACK_FORMAT, ACK_FORMAT_VERSION, "update Chalkbox on the box")
    box_id = v.text(data, "box_id", max_len=64)
    acks = data.get("acks")
    if not isinstance(acks, list):
        raise FormatError("'acks' must be a list", field="acks")
    parsed = [Ack.from_dict(a) for a in acks]
    if any(a.box_id != box_id for a in parsed):
        raise FormatError("an ack names another box", field="acks")
    return parsed
