"""Network sync as a persisted, forward-only session (after morango's sync sessions).

A session walks the stages ``push`` -> ``pull_model`` -> ``report`` -> ``done``;
its state (stage, counters, attempts, the next allowed attempt) lives in
``<data_dir>/sync/session.json``, rewritten atomically after every step. Each
step is idempotent and derives its work from the store, not from the session:
``push`` sends the outbox's unacknowledged records in chunks and moves the
acknowledgement mark after each chunk, so a cut connection loses at most one
chunk's round trip and the retry resends it (the centre ignores duplicates).
A failed step leaves the stage where it was and backs off exponentially.
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from typing import Any, Callable

from ..bundle import ModelManifest, verify_bundle
from ..config import BoxConfig
from ..errors import ApplianceError, BundleError, StoreError
from ..fsutil import atomic_write_text
from ..ids import new_id
from ..validate import PLAIN_ID
from ..models import current_bundle_dir, install_bundle
from ..store import Outbox
from ..syncbundle import build_manifest, encode_records
from .client import CentreClient
from .errors import SyncError
from .outgoing import next_outgoing
from .protocol import CHUNK_RECORDS, MAX_PUSH_BYTES, push_payload

STAGES = ("push", "pull_model", "report", "done")
SESSION_FILE = "session.json"


@dataclasses.dataclass
class SyncState:
    id: str
    stage: str = "push"
    started_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    counters: dict[str, int] = dataclasses.field(default_factory=lambda: {
        "chunks": 0, "records_sent": 0, "records_added": 0, "models_installed": 0})

    def advance(self, stage: str) -> None:
        if STAGES.index(stage) < STAGES.index(self.stage):
            raise SyncError(f"sync session may not go back from {self.stage} to {stage}")
        self.stage = stage


def load_state(config: BoxConfig) -> SyncState:
    path = config.sync_dir / SESSION_FILE
    try:
        data = json.loads(path.read_text())
        return SyncState(**data)
    except FileNotFoundError:
        return SyncState(id=new_id())
    except (ValueError, TypeError) as exc:
        # The state only says where to resume; every step re-derives its work from the
        # store, so a damaged state file costs a fresh session, never data.
        state = SyncState(id=new_id())
        state.last_error = f"previous session state unreadable ({exc}); started afresh"
        return state


def save_state(config: BoxConfig, state: SyncState) -> None:
    config.sync_dir.mkdir(parents=True, exist_ok=True)
    state.updated_at = time.time()
    atomic_write_text(config.sync_dir / SESSION_FILE, json.dumps(dataclasses.asdict(state),
                                                                 indent=2))


def read_token(config: BoxConfig) -> str:
    try:
        return config.token_path.read_text().strip()
    except OSError:
        raise SyncError(f"no centre token at {config.token_path}",
                        hint="provision the box with --central-url and --token")


def client_for(config: BoxConfig) -> CentreClient:
    if not config.central_url:
        raise SyncError("no central_url configured: this box syncs by USB only",
                        hint="set central_url in box.toml, or use 'chalkbox box sync usb'")
    return CentreClient(config.central_url, config.box_id, read_token(config))


def backoff_seconds(attempts: int, base: float, ceiling: float) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), at most ``ceiling``."""
    delay = min(ceiling, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)


# --- the steps --------------------------------------------------------------------
def push_pending(outbox: Outbox, config: BoxConfig, client: CentreClient, state: SyncState,
                 save: Callable[[], None]) -> None:
    limit = CHUNK_RECORDS
    while (batch := next_outgoing(outbox, config, limit)) is not None:
        if not batch.records:  # only opted-out students' records: nothing may leave
            outbox.acknowledge(batch.first_position, batch.last_position)
            continue
        ordered, data = encode_records(batch.records)
        manifest = build_manifest(ordered, data, box_id=config.box_id,
                                  school_id=config.school_id,
                                  outbox_range=(batch.first_position, batch.last_position))
        if len(push_payload(manifest, data)) > MAX_PUSH_BYTES and limit > 1:  # long texts
            limit //= 2
            continue
        ack = client.push(manifest, data)
        outbox.acknowledge(batch.first_position, batch.last_position)  # only once acknowledged
        state.counters["chunks"] += 1
        state.counters["records_sent"] += len(batch.records)
        state.counters["records_added"] += ack.added
        save()
        limit = CHUNK_RECORDS


def pull_model(config: BoxConfig, client: CentreClient, task: str = "grade") -> ModelManifest | None:
    """Install the centre's newest bundle for this school if it is not the current one."""
    latest = client.latest_model(task)
    if not latest:
        return None
    name = str(latest.get("name", ""))
    files = latest.get("files", [])
    allowed = {"manifest.json", "manifest.sig", "model.onnx", "tokenizer.json"}
    if not PLAIN_ID.match(name) or not isinstance(files, list) or not set(files) <= allowed \
            or not {"manifest.json", "manifest.sig"} <= set(files):
        raise SyncError(f"the centre offered a model with a bad name or file list ({name!r})",
                        hint="nothing was downloaded; report this to the centre")
    try:
        current = current_bundle_dir(config.models_dir, task).name
    except BundleError:
        current = None
    if not name or name == current or (config.models_dir / task / name).is_dir():
        return None  # already here (a model rolled back from is not re-installed)
    download = config.sync_dir / "download" / name
    shutil.rmtree(download, ignore_errors=True)
    client.download(name, list(files), download)
    try:
        try:
            verify_bundle(download, config.public_key_path)
        except BundleError as exc:
            # Never installed. A cut download looks like this too, so try again later.
            raise SyncError(f"the downloaded model {name} failed verification: {exc.message}",
                            hint="the box keeps its current model and retries at the next sync")
        return install_bundle(config.models_dir, download, config.public_key_path)
    finally:
        shutil.rmtree(download, ignore_errors=True)


def run_sync(config: BoxConfig, outbox: Outbox, client: CentreClient | None = None,
             health: Callable[[], dict[str, Any]] | None = None, force: bool = False) -> SyncState:
    """One sync session from wherever the last one stopped. Raises SyncError on failure
    (the state then says when the next attempt is due)."""
    state = load_state(config)
    if state.stage == "done":
        state = SyncState(id=new_id())
    if not force and time.time() < state.next_attempt_at:
        return state
    client = client or client_for(config)

    def save() -> None:
        save_state(config, state)

    try:
        # Records first, every time: a session stuck later (a model that will not
        # download) must never hold back the class's records.
        push_pending(outbox, config, client, state, save)
        if state.stage == "push":
            state.advance("pull_model")
            save()
        if state.stage == "pull_model":
            if pull_model(config, client) is not None:
                state.counters["models_installed"] += 1
            state.advance("report")
            save()
        if state.stage == "report":
            models = {}
            try:
                models["grade"] = current_bundle_dir(config.models_dir, "grade").name
            except BundleError:
                pass
            client.report(models, health() if health else {})
            state.advance("done")
        state.attempts, state.last_error, state.next_attempt_at = 0, None, 0.0
        save()
        return state
    except (SyncError, StoreError, BundleError, ApplianceError) as exc:
        state.attempts += 1
        state.last_error = exc.message
        state.next_attempt_at = time.time() + backoff_seconds(
            state.attempts, config.sync_interval_s, config.sync_max_backoff_s)
        save()
        raise
