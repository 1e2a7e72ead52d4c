"""The worker's queue: huey on an embedded SQLite file in the data dir.

Kept apart from appliance.tasks (which binds its tasks to the queue of
$CHALKBOX_DATA_DIR when imported) so that the web app, the doctor and the
metrics can open any box's queue without side effects.
"""
from __future__ import annotations

from pathlib import Path

from huey import SqliteHuey


def make_huey(data_dir: Path) -> SqliteHuey:
    worker_dir = Path(data_dir) / "worker"
    worker_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("chalkbox", filename=str(worker_dir / "huey.db"), results=True,
                      store_none=False, utc=True)
