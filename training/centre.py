"""Where the centre keeps its state, and how its ingest server is started.

A centre directory holds ``chalkbox.db`` (records and the fleet registry),
``published/`` (model bundles boxes may download) and ``quarantine/`` (refused
pushes, kept for a person to look at). One validated dataclass names them, so the
web app, the CLI and the tests agree on the layout; gunicorn gets the directory in
``CHALKBOX_CENTRE_DIR`` because its app factory takes no arguments.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from appliance.serve import GUNICORN_CONF
from appliance.sync.protocol import MAX_PUSH_BYTES

from .errors import TrainingError

CENTRE_DIR_ENV = "CHALKBOX_CENTRE_DIR"
DEFAULT_CENTRE_DIR = Path("var/central")
STORE_FILE = "chalkbox.db"
PUBLISHED_DIR = "published"
QUARANTINE_DIR = "quarantine"


@dataclasses.dataclass(frozen=True)
class CentreConfig:
    store_path: Path
    published_root: Path
    quarantine_dir: Path
    max_body_bytes: int = MAX_PUSH_BYTES
    #: Refused pushes stop being kept once the quarantine holds this much (disk guard).
    max_quarantine_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("store_path", "published_root", "quarantine_dir"):
            value = getattr(self, name)
            if not isinstance(value, (str, os.PathLike)) or not str(value):
                raise TrainingError(f"centre setting {name} must be a path, got {value!r}")
            object.__setattr__(self, name, Path(value))
        for name, low in (("max_body_bytes", 1024), ("max_quarantine_bytes", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise TrainingError(f"centre setting {name} must be an integer >= {low}, "
                                    f"got {value!r}")

    @classmethod
    def from_dir(cls, centre_dir: Path, **overrides) -> "CentreConfig":
        centre_dir = Path(centre_dir)
        return cls(store_path=centre_dir / STORE_FILE, published_root=centre_dir / PUBLISHED_DIR,
                   quarantine_dir=centre_dir / QUARANTINE_DIR, **overrides)

    @classmethod
    def from_env(cls) -> "CentreConfig":
        value = os.environ.get(CENTRE_DIR_ENV)
        if not value:
            raise TrainingError(f"{CENTRE_DIR_ENV} is not set",
                                hint="start the server with 'chalkbox train serve --centre-dir DIR'")
        return cls.from_dir(Path(value))

    def prepare(self) -> "CentreConfig":
        """Create the directories; a centre that cannot write them should not start."""
        try:
            for path in (self.store_path.parent, self.published_root, self.quarantine_dir):
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"cannot create the centre's directories: {exc}",
                                hint="check the --centre-dir path and its permissions")
        return self


def gunicorn_argv(host: str, port: int, *, workers: int = 1, threads: int = 8) -> list[str]:
    """The box's gunicorn settings (gthread, request limits), serving the ingest app."""
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
            "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", str(threads),
            "--name", "chalkbox-centre", "training.ingest_server:create_ingest_app()"]


def gunicorn_env(centre_dir: Path) -> dict[str, str]:
    return {**os.environ, CENTRE_DIR_ENV: str(Path(centre_dir).resolve())}
