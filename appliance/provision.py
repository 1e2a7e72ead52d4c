"""Provisioning: turn an empty directory into a working box. Safe to run again.

Re-running keeps the box's identity (box id, pseudonym secret) and its data;
it updates the settings given, and installs the bundle and content given.
Everything given is checked before anything is written (a bad key, a bundle
signed by another fleet), so a refused provisioning leaves the box as it was.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from .bundle import load_public_key, verify_bundle
from .identity import UNPROVISIONED, new_box_id, system_root, write_identity
from .config import CONFIG_FILE, BoxConfig, load_config, to_toml
from .content import read_exercises, read_faq
from .errors import ConfigError
from .fsutil import atomic_write_text
from .models import install_bundle
from .privacy import ensure_secret
from .store import ContentStore


@dataclasses.dataclass
class ProvisionRequest:
    data_dir: Path
    school_id: str
    public_key: Path
    box_id: str | None = None
    bundle: Path | None = None
    content_dir: Path | None = None
    host: str | None = None
    port: int | None = None
    central_url: str | None = None
    token: str | None = None           # this box's token for the centre (kept in secrets/)
    usb_mount_root: str | None = None
    school_secret: bytes | None = None  # shared by a school's boxes: one pseudonym per student
    teacher_username: str | None = None
    teacher_password: str | None = None
    root: Path | None = None            # install the systemd units under this root


def provision(request: ProvisionRequest) -> BoxConfig:
    data_dir = Path(request.data_dir).absolute()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data dir {data_dir}: {exc.strerror}",
                          hint="choose a writable --data-dir")
    load_public_key(request.public_key)  # refuse bad input before touching anything
    if request.bundle is not None:
        verify_bundle(request.bundle, request.public_key)
    if request.content_dir is not None:
        read_exercises(Path(request.content_dir) / "exercises.csv")
    if request.teacher_username is not None:
        from .store.teachers import MIN_PASSWORD

        if len(request.teacher_password or "") < MIN_PASSWORD:
            raise ConfigError(f"the teacher password must be at least {MIN_PASSWORD} characters")
    existing = load_config(data_dir) if (data_dir / CONFIG_FILE).is_file() else None
    settings = existing.settings() if existing else BoxConfig(data_dir=data_dir).settings()
    kept = existing.box_id if existing and existing.box_id != UNPROVISIONED else None
    settings["box_id"] = request.box_id or kept or new_box_id()
    settings["school_id"] = request.school_id
    for name in ("host", "port", "central_url", "usb_mount_root"):
        if getattr(request, name) is not None:
            settings[name] = getattr(request, name)
    config = BoxConfig(data_dir=data_dir, **settings).validate()

    for path in (config.models_dir, config.outbox_dir, config.public_key_path.parent):
        path.mkdir(parents=True, exist_ok=True)
    ensure_secret(config.secrets_dir, request.school_secret)
    if request.token is not None:
        atomic_write_text(config.token_path, request.token.strip() + "\n", mode=0o600)
    if Path(request.public_key).absolute() != config.public_key_path:
        shutil.copyfile(request.public_key, config.public_key_path)
    atomic_write_text(config.config_path, to_toml(config.settings()))

    if request.content_dir is not None:
        import_content(config, Path(request.content_dir))
    if request.bundle is not None:
        install_bundle(config.models_dir, Path(request.bundle), config.public_key_path)
    if request.teacher_username is not None:
        from .store.teachers import TeacherAccounts

        TeacherAccounts(config.teachers_path).set_password(request.teacher_username,
                                                           request.teacher_password)
    write_identity(config, request.root or system_root())
    if request.root is not None:
        from .units import install_units

        install_units(config, request.root)
    return config


def import_content(config: BoxConfig, content_dir: Path) -> tuple[int, int]:
    """Load exercises.csv (and faq.csv if present) from ``content_dir``; all or nothing."""
    exercises = read_exercises(content_dir / "exercises.csv")
    faq_path = content_dir / "faq.csv"
    faq = read_faq(faq_path) if faq_path.is_file() else []
    ContentStore(config.content_path).replace(exercises, faq)
    return len(exercises), len(faq)
