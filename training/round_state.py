"""A training round's progress, persisted: a forward-only list of finished stages.

``rounds/<round_id>/round.json`` records each finished stage with what it produced. A stage
is recorded only after its outputs are complete on disk, with one atomic write, so a round
killed at any point resumes at the first stage not recorded (its half-written outputs are
cleared and redone). Stages are never re-run once recorded and never skipped: the file is
the round's history, and the round report is drawn from it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from appliance.fsutil import atomic_write_text

from .errors import TrainingError

STAGES = ("ingest", "snapshot", "teacher", "student", "export", "evaluate", "decide",
          "publish", "report")
STATE_FILE = "round.json"
ROUND_RE = re.compile(r"^round-(\d{4,})$")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class RoundState:
    round_id: str
    directory: Path
    started_at: str = dataclasses.field(default_factory=_now)
    finished_at: str | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def next_stage(self) -> str | None:
        for stage in STAGES:
            if stage not in self.stages:
                return stage
        return None

    @property
    def done(self) -> bool:
        return self.next_stage is None

    def output(self, stage: str) -> dict[str, Any]:
        if stage not in self.stages:
            raise TrainingError(f"round {self.round_id} has not finished stage {stage!r}")
        return self.stages[stage]

    def finish(self, stage: str, outputs: dict[str, Any]) -> None:
        """Record ``stage`` as finished; only the next stage may finish (forward only)."""
        if stage != self.next_stage:
            raise TrainingError(f"round {self.round_id}: cannot finish {stage!r}, the next "
                                f"stage is {self.next_stage!r}")
        self.stages[stage] = {**outputs, "finished_at": _now()}
        if self.done:
            self.finished_at = _now()
        self.save()

    def stage_dir(self, stage: str) -> Path:
        return self.directory / stage

    def save(self) -> None:
        data = {"round_id": self.round_id, "started_at": self.started_at,
                "finished_at": self.finished_at, "settings": self.settings,
                "stages": self.stages}
        atomic_write_text(self.directory / STATE_FILE,
                          json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    @classmethod
    def load(cls, directory: Path) -> "RoundState":
        path = Path(directory) / STATE_FILE
        try:
            data = json.loads(path.read_text())
            state = cls(round_id=data["round_id"], directory=Path(directory),
                        started_at=data["started_at"], finished_at=data.get("finished_at"),
                        settings=data.get("settings", {}), stages=data.get("stages", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrainingError(f"cannot read the round state {path}: {exc}",
                                hint="a round directory holds round.json; move a broken round "
                                     "aside and start the next")
        unknown = set(state.stages) - set(STAGES)
        recorded = [s for s in STAGES if s in state.stages]
        if unknown or recorded != list(STAGES[:len(recorded)]):
            raise TrainingError(f"{path} records stages out of order: {sorted(state.stages)}")
        return state


def round_dirs(rounds_root: Path) -> list[Path]:
    """Round directories, oldest first (round-0001, round-0002, ...)."""
    root = Path(rounds_root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := ROUND_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def open_round(rounds_root: Path, settings: dict[str, Any]) -> RoundState:
    """The unfinished round to resume, or a new one numbered after the last."""
    existing = round_dirs(rounds_root)
    if existing and (existing[-1] / STATE_FILE).is_file():
        last = RoundState.load(existing[-1])
        if not last.done:
            return last
        number = int(ROUND_RE.match(existing[-1].name).group(1)) + 1
        directory = Path(rounds_root) / f"round-{number:04d}"
    else:   # no round yet, or one killed before its first save: (re)start it
        directory = existing[-1] if existing else Path(rounds_root) / "round-0001"
    directory.mkdir(parents=True, exist_ok=True)
    state = RoundState(round_id=directory.name, directory=directory, settings=settings)
    state.save()
    return state


def finished_rounds(rounds_root: Path) -> list[RoundState]:
    return [s for s in (RoundState.load(p) for p in round_dirs(rounds_root)
                        if (p / STATE_FILE).is_file()) if s.done]
