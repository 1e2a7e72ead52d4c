"""How the box is served: gunicorn with the config file in this package."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import BoxConfig
from .errors import ConfigError

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def gunicorn_argv(config: BoxConfig) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
            "--bind", f"{config.host}:{config.port}", "--workers", str(config.workers),
            "--threads", str(config.threads), "--name", f"chalkbox-{config.box_id}",
            "appliance.web:create_app()"]


def gunicorn_env(config: BoxConfig) -> dict[str, str]:
    return {**os.environ, "CHALKBOX_DATA_DIR": str(config.data_dir)}


def http_json(method: str, url: str, body=None, *, raw: bytes | None = None,
              timeout: float = 30.0) -> tuple[int, object]:
    """A tiny JSON client (stdlib only): (status, parsed body); 4xx/5xx do not raise."""
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload or b"null")
    except ValueError:
        return status, {"raw": payload.decode(errors="replace")}


def wait_ready(base_url: str, process, timeout: float = 120.0) -> None:
    """Poll /readyz until it answers 200; fail early if the server process died."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"the box server exited with code {process.returncode}",
                              hint="read its log")
        try:
            if http_json("GET", base_url + "/readyz", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise ConfigError(f"the box at {base_url} was not ready within {timeout:.0f}s",
                      hint="read its log; check /readyz")
