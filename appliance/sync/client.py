"""The box's HTTP client for the centre (stdlib only: the box stays lean)."""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..fsutil import atomic_write_bytes
from .errors import SyncError
from .protocol import (BOX_HEADER, MODEL_FILE_PATH, MODELS_LATEST_PATH, PUSH_PATH, REPORT_PATH,
                       Ack, push_payload)

MAX_MODEL_FILE_BYTES = 512 * 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The centre never redirects; following one would hand the box's token to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class CentreClient:
    def __init__(self, base_url: str, box_id: str, token: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.box_id = box_id
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: bytes | None = None):
        request = urllib.request.Request(
            self.base_url + path, data=body, method=method,
            headers={"Authorization": f"Bearer {self.token}", BOX_HEADER: self.box_id,
                     "Content-Type": "application/json"})
        try:
            return _opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace")
            if exc.code == 404:
                return None
            hint = {401: "the box's token is wrong: re-provision with a new token from "
                         "'chalkbox train fleet add-box --rotate'",
                    403: "the centre does not accept this box id for this token"}.get(exc.code)
            raise SyncError(f"the centre refused {method} {path}: {exc.code} {detail}", hint=hint)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise SyncError(f"the centre at {self.base_url} is unreachable ({reason})",
                            hint="the box will try again later; or sync by USB stick")

    def _json(self, method: str, path: str, body: bytes | None = None) -> Any:
        response = self._request(method, path, body)
        if response is None:
            return None
        with response:
            try:
                return json.loads(response.read())
            except (ValueError, OSError, http.client.HTTPException) as exc:
                raise SyncError(f"the centre's answer to {path} was cut or is not JSON ({exc})")

    def push(self, manifest: dict[str, Any], data: bytes) -> Ack:
        answer = self._json("POST", PUSH_PATH, push_payload(manifest, data))
        try:
            ack = Ack.from_dict(answer)
        except FormatError as exc:
            raise SyncError(f"the centre's acknowledgement is malformed: {exc.message}")
        if (ack.box_id, ack.first_id, ack.last_id, ack.count) != (
                manifest["box_id"], manifest["first_id"], manifest["last_id"], manifest["count"]):
            raise SyncError("the centre acknowledged something other than what was sent")
        return ack

    def latest_model(self, task: str) -> dict[str, Any] | None:
        return self._json("GET", f"{MODELS_LATEST_PATH}?{urllib.parse.urlencode({'task': task})}")

    def download(self, name: str, files: list[str], dest: Path) -> Path:
        """Fetch a bundle's files into ``dest`` (the caller verifies the signature)."""
        dest.mkdir(parents=True, exist_ok=True)
        for file in files:
            path = MODEL_FILE_PATH.format(name=urllib.parse.quote(name),
                                          file=urllib.parse.quote(file))
            response = self._request("GET", path)
            if response is None:
                raise SyncError(f"the centre has no {file} for model {name}")
            with response:
                expected = response.headers.get("Content-Length")
                try:
                    data = response.read(MAX_MODEL_FILE_BYTES + 1)
                except (OSError, http.client.HTTPException) as exc:
                    raise SyncError(f"the download of {file} was cut ({exc}); will retry")
            if expected is not None and expected.isdigit() and len(data) != int(expected):
                raise SyncError(f"the download of {file} was cut ({len(data)} of {expected} "
                                "bytes); will retry")
            if len(data) > MAX_MODEL_FILE_BYTES:
                raise SyncError(f"{file} of {name} is over {MAX_MODEL_FILE_BYTES >> 20} MiB")
            atomic_write_bytes(dest / Path(file).name, data)
        return dest

    def report(self, models: dict[str, str], health: dict[str, Any]) -> None:
        self._json("POST", REPORT_PATH, json.dumps({"models": models, "health": health}).encode())
