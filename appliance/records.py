"""The interaction record: what the box keeps of every student and teacher action.

This is a contract between the box and the centre (see docs/formats.md). It is
versioned (``schema_version``) and validated on every read: a bad record is
refused with a message naming the field. Student identities inside a record are
already pseudonymous (a keyed hash made on the box, see ``appliance.privacy``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Mapping

from . import validate as v
from .errors import FormatError
from .ids import is_uuid7, new_id

SCHEMA_VERSION = 1

#: What a record is about. ``answer``: a student's answer to an exercise and the
#: model's grade of it. ``grade``: a grade asked for directly (question, reference
#: and answer given, e.g. a teacher trying a new exercise). ``question``: a student's
#: question and the knowledge-base answer the model matched. ``feedback``: a thumbs
#: up/down on an earlier record. ``teacher_label``: a teacher's gold label for an
#: earlier record. ``teacher_answer``: a teacher's answer to a forwarded question.
KINDS = ("answer", "grade", "question", "feedback", "teacher_label", "teacher_answer")

#: The texts a record may carry, and their limits in characters.
TEXT_FIELDS = {"question": 2000, "reference": 4000, "answer": 2000, "comment": 2000}

MAX_ID = 64
MAX_NAME = 120


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> dt.datetime:
    """A record's ISO 8601 timestamp (``...Z`` for UTC) as a datetime; ValueError if it is not one."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _timestamp(data: Mapping[str, Any], field: str) -> str:
    value = v.text(data, field, max_len=40)
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        raise FormatError(f"'{field}' must be an ISO 8601 timestamp, got {value!r}", field=field)
    if parsed.tzinfo is None:
        raise FormatError(f"'{field}' must carry a time zone (use 'Z' for UTC)", field=field)
    return value


@dataclasses.dataclass(frozen=True)
class InteractionRecord:
    id: str
    box_id: str
    school_id: str
    kind: str
    created_at: str
    class_id: str | None = None
    subject: str | None = None
    grade_band: str | None = None
    student: str | None = None          # pseudonymous id, never a name
    exercise_id: str | None = None
    ref_id: str | None = None            # the record a feedback or label is about
    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    model_id: str | None = None
    model_version: str | None = None
    prediction: str | None = None
    confidence: float | None = None
    teacher_label: str | None = None
    feedback: str | None = None          # "up" / "down"
    idempotency_key: str | None = None   # set by the tablet so a re-sent submission counts once
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def create(cls, **fields: Any) -> "InteractionRecord":
        """A new record with a fresh time-ordered id and timestamp, validated."""
        fields.setdefault("id", new_id())
        fields.setdefault("created_at", utc_now())
        return cls.from_dict(fields)

    def to_dict(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict (which deep-copies): this runs per record
        # on every export and ingest.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["texts"] = dict(self.texts)
        return {k: val for k, val in data.items() if val is not None and val != {}}

    @classmethod
    def from_dict(cls, data: Any) -> "InteractionRecord":
        """Validate an untrusted mapping; raise FormatError naming the first bad field."""
        data = v.require_mapping(data, "record")
        v.no_unknown_fields(data, _FIELD_NAMES, "record")
        version = v.integer(data, "schema_version", minimum=1, required=False,
                            default=SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise FormatError(
                f"record schema_version {version} is newer than this software ({SCHEMA_VERSION})",
                field="schema_version", hint="upgrade Chalkbox on the receiving side")
        record_id = v.text(data, "id", max_len=36)
        if not is_uuid7(record_id):
            raise FormatError(f"'id' must be a UUIDv7 string, got {record_id!r}", field="id")
        texts = data.get("texts") or {}
        v.require_mapping(texts, "texts")
        v.no_unknown_fields(texts, TEXT_FIELDS, "texts")
        clean_texts = {k: v.text(texts, k, max_len=limit, prefix="texts.", allow_empty=True)
                       for k, limit in TEXT_FIELDS.items() if k in texts}
        optional = {name: v.text(data, name, max_len=MAX_NAME, required=False)
                    for name in ("class_id", "subject", "grade_band", "student", "exercise_id",
                                 "ref_id", "model_id", "model_version", "prediction",
                                 "teacher_label", "idempotency_key")}
        return cls(
            id=record_id,
            box_id=v.text(data, "box_id", max_len=MAX_ID),
            school_id=v.text(data, "school_id", max_len=MAX_ID),
            kind=v.choice(data, "kind", KINDS),
            created_at=_timestamp(data, "created_at"),
            texts=clean_texts,
            confidence=v.number(data, "confidence", minimum=0.0, maximum=1.0, required=False),
            feedback=v.choice(data, "feedback", ("up", "down"), required=False),
            schema_version=version,
            **optional,
        )


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(InteractionRecord))

#: Stored records are upgraded on read, one version at a time: MIGRATIONS[n] turns a
#: version-n document into a version-(n+1) one. Empty while version 1 is the only one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade_record(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record document brought up to SCHEMA_VERSION (older boxes' data stays readable)."""
    data = dict(doc)
    version = data.get("schema_version", 1)
    while isinstance(version, int) and version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise FormatError(f"no migration from record schema_version {version}",
                              field="schema_version")
        data = MIGRATIONS[version](data)
        version = data["schema_version"] = version + 1
    return data
