"""How the box is served: gunicorn with the config file in this package."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import BoxConfig

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def gunicorn_argv(config: BoxConfig) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
            "--bind", f"{config.host}:{config.port}", "--workers", str(config.workers),
            "--threads", str(config.threads), "--name", f"chalkbox-{config.box_id}",
            "appliance.web:create_app()"]


def gunicorn_env(config: BoxConfig) -> dict[str, str]:
    return {**os.environ, "CHALKBOX_DATA_DIR": str(config.data_dir)}
