"""The box's configuration: defaults, then ``<data_dir>/box.toml``, then CLI flags.

One validated dataclass; every other module reads its settings from here. The
file is TOML so a technician can read and edit it; unknown keys are refused so
that a typo never silently leaves a default in force.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .records import TEXT_FIELDS
from .review import STRATEGIES as REVIEW_STRATEGIES
from .validate import PLAIN_ID

CONFIG_FILE = "box.toml"


@dataclasses.dataclass(frozen=True)
class BoxConfig:
    data_dir: Path
    box_id: str = "unprovisioned"
    school_id: str = "unprovisioned"
    host: str = "127.0.0.1"
    port: int = 8080
    # Requests bigger than this are refused with 413 before they are read.
    max_request_bytes: int = 64 * 1024
    max_answer_chars: int = 2000
    # gunicorn: one process keeps one copy of the model in memory; threads serve the class.
    workers: int = 1
    threads: int = 16
    # onnxruntime intra-op threads; 0 means one per core.
    inference_threads: int = 0
    # Micro-batching: concurrent requests share one model run of at most batch_max_size
    # pairs, waiting at most batch_max_wait_ms for company.
    batching: bool = True
    batch_max_size: int = 32
    batch_max_wait_ms: float = 4.0
    # Threads running batches side by side (0: one per core). Measured on 2 cores: no
    # setting beats one (docs/experiments.md, serving on the AMD EPYC machine).
    batch_runners: int = 1
    # Records per outbox segment: bounds what one durable write rewrites.
    segment_records: int = 1000
    # Below this confidence a grade is flagged for teacher review.
    review_below: float = 0.7
    # Reviews offered to each teacher per day (0 = no limit), and in what order:
    # "uncertainty" (where the model is least sure, first), "random", or "mixed" (alternated).
    review_daily_budget: int = 40
    review_strategy: str = "uncertainty"
    # The review queue offers what students sent in the last this many days (0 = all):
    # last month's answer is stale for its class, and reading a term's records per page is slow.
    review_window_days: float = 14.0
    # A student's question is answered from the FAQ at or above this confidence, else it
    # goes to the teacher. -1: the threshold the matcher's bundle carries (chosen at export
    # for that matcher), else 0.6.
    ask_answer_above: float = -1.0
    # With the sentence encoder: a FAQ question at least this close (cosine) to the student's
    # is the same question, answered at once (0 = off); below ``ask_min_similarity`` to every
    # FAQ question, the question goes to the teacher without the matcher (0 = off).
    ask_same_question_above: float = 0.9
    ask_min_similarity: float = 0.6
    public_key: str = "keys/fleet.pub.pem"
    # Refuse new writes (clearly) below this much free disk: never fill the disk silently.
    min_free_mb: int = 50
    # Synced records are kept this long on the box before compaction may delete them.
    keep_synced_days: float = 30.0
    # Network sync: the centre's address ("" = USB only), and how often to try.
    central_url: str = ""
    sync_interval_s: int = 300
    sync_max_backoff_s: int = 6 * 3600
    # Where USB sticks get mounted (Debian: /media/<user>/<label>).
    usb_mount_root: str = "/media"
    # A monitoring server's bearer token for /metrics ("": only from the box itself).
    metrics_token: str = ""
    # mDNS host name: tablets open http://<mdns_name>.local/ ("" turns advertising off).
    mdns_name: str = "chalkbox"

    # --- derived paths (not settings) ---
    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def content_path(self) -> Path:
        return self.data_dir / "content.json"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def teachers_path(self) -> Path:
        return self.data_dir / "teachers.json"

    @property
    def roster_path(self) -> Path:
        return self.data_dir / "roster.json"

    @property
    def sync_dir(self) -> Path:
        return self.data_dir / "sync"

    @property
    def worker_dir(self) -> Path:
        return self.data_dir / "worker"

    @property
    def token_path(self) -> Path:
        return self.secrets_dir / "central.token"

    @property
    def public_key_path(self) -> Path:
        path = Path(self.public_key)
        return path if path.is_absolute() else self.data_dir / path

    def validate(self) -> "BoxConfig":
        checks = [
            (1 <= self.port <= 65535, "port", "a TCP port between 1 and 65535"),
            (1024 <= self.max_request_bytes <= 16 * 1024 * 1024, "max_request_bytes",
             "between 1024 and 16 MiB"),
            (10 <= self.max_answer_chars <= TEXT_FIELDS["answer"], "max_answer_chars",
             f"between 10 and {TEXT_FIELDS['answer']} (what a record can hold)"),
            (1 <= self.workers <= 16, "workers", "between 1 and 16"),
            (1 <= self.threads <= 256, "threads", "between 1 and 256"),
            (0 <= self.inference_threads <= 64, "inference_threads", "between 0 and 64"),
            (1 <= self.batch_max_size <= 512, "batch_max_size", "between 1 and 512"),
            (0.0 <= self.batch_max_wait_ms <= 1000.0, "batch_max_wait_ms", "between 0 and 1000"),
            (0 <= self.batch_runners <= 64, "batch_runners", "between 0 (one per core) and 64"),
            (10 <= self.segment_records <= 100000, "segment_records", "between 10 and 100000"),
            (0.0 <= self.review_below <= 1.0, "review_below", "between 0 and 1"),
            (0 <= self.review_daily_budget <= 10000, "review_daily_budget",
             "between 0 (no limit) and 10000"),
            (self.review_window_days == 0 or 1 <= self.review_window_days <= 3650,
             "review_window_days", "0 (everything) or between 1 and 3650"),
            (self.review_strategy in REVIEW_STRATEGIES, "review_strategy",
             " or ".join(repr(s) for s in REVIEW_STRATEGIES)),
            (self.ask_answer_above == -1.0 or 0.0 <= self.ask_answer_above <= 1.0,
             "ask_answer_above", "between 0 and 1, or -1 (the matcher bundle's own)"),
            (self.ask_same_question_above == 0.0 or 0.5 <= self.ask_same_question_above <= 1.0,
             "ask_same_question_above", "0 (off) or between 0.5 and 1"),
            (0.0 <= self.ask_min_similarity <= 1.0, "ask_min_similarity",
             "between 0 (off) and 1"),
            (0 <= self.min_free_mb <= 1_000_000, "min_free_mb", "between 0 and 1000000"),
            (0 <= self.keep_synced_days <= 3650, "keep_synced_days", "between 0 and 3650"),
            (10 <= self.sync_interval_s <= 86400, "sync_interval_s", "between 10 and 86400"),
            (60 <= self.sync_max_backoff_s <= 7 * 86400, "sync_max_backoff_s",
             "between 60 and 604800"),
            (self.mdns_name == "" or bool(PLAIN_ID.match(self.mdns_name)), "mdns_name",
             "empty or a plain host name"),
            (self.central_url == "" or self.central_url.startswith(("http://", "https://")),
             "central_url", "empty or an http(s):// address"),
            (bool(PLAIN_ID.match(self.box_id)), "box_id",
             "1 to 64 letters, digits, '-', '_' or '.'"),
            (bool(PLAIN_ID.match(self.school_id)), "school_id",
             "1 to 64 letters, digits, '-', '_' or '.'"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ConfigError(f"config '{name}' must be {expected}, got {getattr(self, name)!r}",
                                  hint=f"fix '{name}' in {self.config_path}")
        return self

    def settings(self) -> dict[str, Any]:
        """The values a config file holds (everything but data_dir)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "data_dir"}


_FIELDS = {f.name: f for f in dataclasses.fields(BoxConfig)}


def _coerce(name: str, value: Any) -> Any:
    expected = type(_FIELDS[name].default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
        raise ConfigError(f"config '{name}' must be a {expected.__name__}, got {value!r}",
                          hint=f"fix '{name}' in box.toml")
    return value


def load_config(data_dir: Path | str | None = None, overrides: Mapping[str, Any] | None = None,
                *, require_file: bool = True) -> BoxConfig:
    """Defaults, then the data dir's box.toml, then ``overrides`` (CLI flags; None means unset)."""
    data_dir = Path(data_dir or os.environ.get("CHALKBOX_DATA_DIR", "/var/lib/chalkbox"))
    values: dict[str, Any] = {}
    path = data_dir / CONFIG_FILE
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}", hint="fix or re-provision it")
    elif require_file:
        raise ConfigError(f"{path} not found: {data_dir} is not a provisioned box",
                          hint="run 'chalkbox box provision --data-dir DIR' first, or pass the "
                               "right --data-dir")
    values.update({k: val for k, val in (overrides or {}).items() if val is not None})
    unknown = sorted(set(values) - set(_FIELDS) | ({"data_dir"} & set(values)))
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}",
                          hint="see docs/technician.md for the settings a box understands")
    values = {k: _coerce(k, val) for k, val in values.items()}
    return BoxConfig(data_dir=data_dir, **values).validate()


def to_toml(settings: Mapping[str, Any]) -> str:
    """Flat str/int/float/bool settings as TOML (all a box config holds)."""
    lines = ["# Chalkbox box configuration. Written by 'chalkbox box provision'.", ""]
    for key, value in settings.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, (int, float)):
            rendered = repr(value)
        else:
            rendered = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"
