"""The unattended provisioning file: what a technician writes once for a box.

TOML, for example::

    school_id = "school-042"
    public_key = "/etc/chalkbox/fleet.pub.pem"
    bundle = "usb"                 # or a path to a signed model bundle
    content = "demo"               # or a directory with exercises.csv and faq.csv
    central_url = "https://centre.example.org"
    token = "..."                  # from `chalkbox train fleet add-box`
    school_secret = "64 hex digits"

    [teacher]
    username = "ms-okafor"
    password = "at least 8 characters"

Every key is checked (unknown keys are refused, so a typo is never silently ignored).
It holds secrets, so provisioning deletes it once it has been applied.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from . import validate as v
from .errors import ConfigError, FormatError

KEYS = ("school_id", "box_id", "public_key", "bundle", "content", "central_url", "token",
        "school_secret", "host", "port", "usb_mount_root", "teacher")


@dataclasses.dataclass
class ProvisionFile:
    school_id: str
    public_key: Path
    box_id: str | None = None
    bundle: str | None = None          # a path, or "usb"
    content: str | None = None         # a path, or "demo"
    central_url: str | None = None
    token: str | None = None
    school_secret: bytes | None = None
    host: str | None = None
    port: int | None = None
    usb_mount_root: str | None = None
    teacher_username: str | None = None
    teacher_password: str | None = None


def parse(data: Any) -> ProvisionFile:
    data = v.require_mapping(data, "provisioning file")
    v.no_unknown_fields(data, KEYS, "the provisioning file")
    teacher = v.require_mapping(data.get("teacher", {}), "teacher")
    v.no_unknown_fields(teacher, ("username", "password"), "[teacher]")
    secret = v.text(data, "school_secret", max_len=64, required=False)
    try:
        secret_bytes = bytes.fromhex(secret) if secret else None
    except ValueError:
        raise FormatError("'school_secret' must be 64 hex digits", field="school_secret")
    public_key = Path(v.text(data, "public_key", max_len=4096))
    return ProvisionFile(
        school_id=v.plain_id(data, "school_id"),
        public_key=public_key,
        box_id=v.plain_id(data, "box_id", required=False),
        bundle=v.text(data, "bundle", max_len=4096, required=False),
        content=v.text(data, "content", max_len=4096, required=False),
        central_url=v.text(data, "central_url", max_len=2048, required=False),
        token=v.text(data, "token", max_len=512, required=False),
        school_secret=secret_bytes,
        host=v.text(data, "host", max_len=255, required=False),
        port=v.integer(data, "port", minimum=1, maximum=65535, required=False),
        usb_mount_root=v.text(data, "usb_mount_root", max_len=4096, required=False),
        teacher_username=v.text(teacher, "username", max_len=40, required=False,
                                prefix="teacher."),
        teacher_password=v.text(teacher, "password", max_len=256, required=False,
                                prefix="teacher."),
    )


def read(path: Path) -> ProvisionFile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the provisioning file {path}: {exc.strerror}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", hint="see docs/technician.md")
    try:
        return parse(data)
    except FormatError as exc:
        raise ConfigError(f"{path}: {exc.message}",
                          hint=exc.hint or "fix that key and run provisioning again")
