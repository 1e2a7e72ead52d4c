"""``chalkbox box doctor`` and ``diagnostics``: say plainly what is wrong with a box.

Each check looks at one real thing (the disk, the files, the model, the worker, the
port) and answers ok / warn / fail with a hint for the technician. The doctor runs
when things are broken, so no check may take the others down: a check that raises is
reported as a fail of its own. Diagnostics bundle the doctor's answers with counts
and settings for someone far away, and never carry student text or secrets.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .config import BoxConfig
from .errors import ApplianceError, FormatError, StoreError
from .records import InteractionRecord, parse_timestamp, upgrade_record
from .store.outbox import TABLE, Outbox
from .store.storage import AtomicJSONStorage

OK, WARN, FAIL = "ok", "warn", "fail"
MB = 1024 * 1024
HEARTBEAT_FILE = "heartbeat"        # written by appliance.tasks.heartbeat
HEARTBEAT_MAX_AGE_S = 180           # the worker beats every minute
QUEUE_WARN = 100
UNSYNCED_WARN_DAYS = 7
CLOCK_FLOOR = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CLOCK_SLACK_S = 300
MAX_PROBLEMS = 5
# A fixed (question, reference, answer): the model check grades it for real.
PROBE = ("What is water made of?", "Hydrogen and oxygen.", "water is hydrogen and oxygen")
RESTORE_HINT = ("restore the data dir from a backup: 'chalkbox box restore --from BACKUP "
                "--data-dir DIR --force'")


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str      # ok | warn | fail
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_check(name: str, fn: Callable[..., tuple], *args) -> Check:
    """``fn`` returns (status, message[, hint]); whatever it raises becomes a fail."""
    try:
        return Check(name, *fn(*args))
    except FormatError as exc:  # its message may quote the bad value: a student's text
        return Check(name, FAIL, f"a stored file or record has a bad field '{exc.field}'",
                     f"the store check names the file; {RESTORE_HINT}")
    except ApplianceError as exc:
        return Check(name, FAIL, exc.message, exc.hint)
    except Exception as exc:  # the doctor must answer even for damage nobody foresaw
        return Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "send 'chalkbox box diagnostics --to DIR' to support")


def run_checks(config: BoxConfig, *, url: str | None = None) -> list[Check]:
    checks = [("disk", check_disk), ("permissions", check_permissions), ("store", check_store),
              ("model", check_model), ("worker", check_worker), ("queue", check_queue),
              ("unsynced", check_unsynced), ("sync", check_sync), ("clock", check_clock)]
    results = [run_check(name, fn, config) for name, fn in checks]
    return results + [run_check("port", check_port, config, url)]


def health_summary(config: BoxConfig) -> dict[str, Any]:
    """What a box tells the centre when it syncs: each check's status, no details."""
    checks = run_checks(config)
    return {"status": overall(checks), "checks": {c.name: c.status for c in checks}}


def overall(checks: list[Check]) -> str:
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


def report(checks: list[Check]) -> dict[str, Any]:
    return {"status": overall(checks), "checks": [c.to_dict() for c in checks]}


def format_plain(checks: list[Check]) -> list[str]:
    width = max(len(c.name) for c in checks)
    return [f"{c.status:4}  {c.name:{width}}  {c.message}"
            + (f" (hint: {c.hint})" if c.hint and c.status != OK else "") for c in checks]


# --- the checks --------------------------------------------------------------------
def check_disk(config: BoxConfig):
    free = shutil.disk_usage(config.data_dir).free
    floor = config.min_free_mb * MB
    message = (f"{free / MB:,.0f} MB free on the data disk; the box refuses new records "
               f"below {config.min_free_mb} MB (min_free_mb)")
    hint = ("sync to the centre and let compaction run, or free space on the data disk "
            "(old logs, old backups, '*.before-restore-*' directories)")
    if free < floor:
        return FAIL, message, hint
    return (WARN, message, hint) if free < 4 * floor else (OK, message)


def check_permissions(config: BoxConfig):
    try:
        fd, tmp = tempfile.mkstemp(dir=config.data_dir, prefix=".doctor-", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return (FAIL, f"the data dir {config.data_dir} is not writable ({exc.strerror})",
                "give the service user the data dir: chown -R chalkbox: DATA_DIR")
    problems, fixes = [], []
    secrets = config.secrets_dir
    key = secrets / "pseudonym.key"
    if not secrets.is_dir() or not key.is_file():
        return (FAIL, f"the pseudonym secret {key} is missing",
                f"restore it from a backup, or {RESTORE_HINT}")
    if secrets.stat().st_mode & 0o077:
        problems.append(f"{secrets} is open to other users (mode {_mode(secrets)})")
        fixes.append(f"chmod 700 {secrets}")
    for path in (key, config.token_path):
        if path.is_file() and path.stat().st_mode & 0o777 != 0o600:
            problems.append(f"{path.name} has mode {_mode(path)}, not 0600")
            fixes.append(f"chmod 600 {path}")
    if problems:
        return FAIL, "; ".join(problems), "; ".join(fixes)
    return OK, f"data dir writable; {secrets.name}/ is private"


def _mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o777:04o}"


def check_store(config: BoxConfig):
    if not config.outbox_dir.is_dir():
        return FAIL, f"the outbox {config.outbox_dir} is missing", RESTORE_HINT
    outbox = Outbox(config.outbox_dir, config.segment_records)
    problems, records, segments = [], 0, outbox.segments()
    for path in segments:
        count, problem = _segment_problem(path)
        records += count
        if problem:
            problems.append(problem)
    try:
        outbox.acked_through()
    except StoreError:
        problems.append(f"{config.outbox_dir.name}/acked.json is damaged")
    for path, table, required in ((config.content_path, "exercises", True),
                                  (config.roster_path, "students", False)):
        problem = _tinydb_problem(path, table, required)
        if problem:
            problems.append(problem)
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS])
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        return FAIL, f"damaged store: {shown}{more}", RESTORE_HINT
    return OK, f"{len(segments)} outbox segment(s), {records} record(s); content and roster readable"


UNREADABLE = object()


def read_json(path: Path) -> Any:
    """A TinyDB file's data, None when empty or absent, UNREADABLE when not JSON."""
    try:
        return AtomicJSONStorage(path).read()
    except StoreError:
        return UNREADABLE


def _segment_problem(path: Path) -> tuple[int, str | None]:
    """(records, what is wrong). Names fields only: a record's values may be student text."""
    data = read_json(path)
    if data is UNREADABLE or data is None:
        return 0, f"{path.name} is {'not readable JSON' if data else 'empty'}"
    docs = data.get(TABLE) if isinstance(data, dict) else None
    if not isinstance(docs, dict):
        return 0, f"{path.name} has no '{TABLE}' table"
    for index, doc in docs.items():
        if not index.isdigit():
            return len(docs), f"{path.name} has a record with the bad index {index[:20]!r}"
        try:
            InteractionRecord.from_dict(upgrade_record(doc if isinstance(doc, dict) else {}))
        except FormatError as exc:
            return len(docs), f"{path.name} record {index} has a bad field '{exc.field}'"
    return len(docs), None


def _tinydb_problem(path: Path, table: str, required: bool) -> str | None:
    if not path.exists():
        return f"{path.name} is missing" if required else None
    data = read_json(path)
    if data is UNREADABLE:
        return f"{path.name} is not readable JSON"
    if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
        return f"{path.name} is not a TinyDB file"
    if required and not data.get(table):
        return f"{path.name} holds no {table}"
    return None


def check_model(config: BoxConfig):
    import numpy as np

    from .bundle import verify_bundle
    from .inference.engine import OnnxModel
    from .inference.pairs import grade_pair
    from .models import current_bundle_dir

    bundle = current_bundle_dir(config.models_dir, "grade")
    manifest = verify_bundle(bundle, config.public_key_path)
    model = OnnxModel(bundle, manifest, threads=1)
    question, reference, answer = PROBE
    started = time.perf_counter()
    probs = model.probabilities([grade_pair(manifest.input_format, question, reference, answer)])
    elapsed = (time.perf_counter() - started) * 1000
    if probs.shape != (1, len(manifest.labels)) or not np.isfinite(probs).all():
        return (FAIL, f"{manifest.name} loads but gives no usable prediction (shape {probs.shape})",
                "roll back: 'chalkbox box model rollback'")
    best = int(np.argmax(probs[0]))
    return OK, (f"{manifest.name} signature verified; a test answer graded "
                f"'{manifest.labels[best]}' ({probs[0, best]:.2f}) in {elapsed:.0f} ms "
                f"on {model.providers[0]}")


def check_worker(config: BoxConfig):
    path = config.worker_dir / HEARTBEAT_FILE
    hint = ("start the worker: 'systemctl start chalkbox-worker' (or 'chalkbox box worker "
            "--data-dir DIR'); if it is running, read 'journalctl -u chalkbox-worker'")
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return FAIL, "no worker heartbeat: the worker has not run on this data dir", hint
    try:
        beat = float(raw.strip())
    except ValueError:
        beat = path.stat().st_mtime
    age = time.time() - beat
    if age > HEARTBEAT_MAX_AGE_S:
        return FAIL, f"the worker's last heartbeat was {_ago(age)} ago: it is stopped or stuck", hint
    return OK, f"worker heartbeat {max(age, 0):.0f} s ago"


def check_queue(config: BoxConfig):
    from .queue import make_huey

    queue = make_huey(config.data_dir)
    pending = queue.pending_count()
    message = f"{pending} task(s) waiting for the worker"
    if pending > QUEUE_WARN:
        return (WARN, message, "the worker is behind or stuck: check 'systemctl status "
                               "chalkbox-worker' and its log")
    return OK, message


def check_unsynced(config: BoxConfig):
    count, oldest = Outbox(config.outbox_dir, config.segment_records).unsynced()
    if not count:
        return OK, "every record has reached the centre"
    age = time.time() - _parse_time(oldest.created_at).timestamp()
    message = f"{count} record(s) not yet at the centre; the oldest is {_ago(age)} old"
    if age > UNSYNCED_WARN_DAYS * 86400:
        return (WARN, message, "sync: 'chalkbox box sync now' (network) or 'chalkbox box sync "
                               "usb' with a stick, then take it to the centre")
    return OK, message


def check_sync(config: BoxConfig):
    from .sync.session import load_state

    state = load_state(config)
    if state.last_error:
        return (WARN, f"the last network sync failed ({state.attempts} attempt(s)): "
                      f"{state.last_error}",
                "check the network, central_url and the token; try 'chalkbox box sync now'")
    if not config.central_url:
        return OK, "no central_url: this box syncs by USB stick"
    return OK, f"network sync to {config.central_url}: last session {state.stage}"


def check_clock(config: BoxConfig):
    now = dt.datetime.now(dt.timezone.utc)
    hint = "set the clock ('timedatectl set-ntp true', or 'timedatectl set-time'): records carry it"
    if now < CLOCK_FLOOR:
        return FAIL, f"the system clock says {now:%Y-%m-%d %H:%M}Z, before 2024", hint
    newest = _newest_record_time(config)
    if newest and now < newest - dt.timedelta(seconds=CLOCK_SLACK_S):
        return (FAIL, f"the system clock ({now:%Y-%m-%d %H:%M}Z) is behind the newest record "
                      f"({newest:%Y-%m-%d %H:%M}Z): it went backwards", hint)
    return OK, f"system clock {now:%Y-%m-%d %H:%M:%S}Z"


def _newest_record_time(config: BoxConfig) -> dt.datetime | None:
    outbox = Outbox(config.outbox_dir, config.segment_records)
    for path in reversed(outbox.segments()):
        data = read_json(path)
        docs = data.get(TABLE) if isinstance(data, dict) else None
        times = [doc["created_at"] for doc in (docs or {}).values()
                 if isinstance(doc, dict) and isinstance(doc.get("created_at"), str)]
        parsed = [t for t in map(_parse_time, times) if t is not None]
        if parsed:
            return max(parsed)
    return None


def _parse_time(value: str) -> dt.datetime | None:
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def check_port(config: BoxConfig, url: str | None = None):
    import http.client

    from .serve import http_json

    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(config.host, config.host)
    base = (url or f"http://{f'[{host}]' if ':' in host else host}:{config.port}").rstrip("/")
    hint = ("start the web service ('systemctl start chalkbox-web'); check host and port in "
            "box.toml and that nothing else holds the port")
    try:
        status, _ = http_json("GET", base + "/healthz", timeout=3)
    except (OSError, http.client.HTTPException) as exc:
        return FAIL, f"nothing answers at {base}/healthz ({getattr(exc, 'reason', exc)})", hint
    if status != 200:
        return FAIL, f"{base}/healthz answered {status}", hint
    return OK, f"{base}/healthz answers 200"


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}s"
    return f"{seconds:.0f} s"

