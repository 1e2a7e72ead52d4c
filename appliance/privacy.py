"""Student pseudonyms: a keyed hash, so identities never leave the box.

A student is known by class code + nickname on the tablet. Records hold only
HMAC-SHA256(school secret, class + nickname), truncated: stable for one school
(so a student's answers can be followed over time), meaningless without the
secret, which is generated at provisioning and never exported.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from pathlib import Path

from .errors import ConfigError
from .fsutil import atomic_write_bytes

SECRET_FILE = "pseudonym.key"


def normalise_name(name: str) -> str:
    """So 'Ana ', 'ana' and 'ＡＮＡ' are one student."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def pseudonym(secret: bytes, class_id: str, nickname: str) -> str:
    message = f"{normalise_name(class_id)}\x00{normalise_name(nickname)}".encode("utf-8")
    return "s-" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:24]


def ensure_secret(secrets_dir: Path) -> bytes:
    """Create the per-school secret once; later calls return the same bytes."""
    path = Path(secrets_dir) / SECRET_FILE
    if not path.exists():
        Path(secrets_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(path, secrets.token_bytes(32), mode=0o600)
    return load_secret(secrets_dir)


def load_secret(secrets_dir: Path) -> bytes:
    path = Path(secrets_dir) / SECRET_FILE
    try:
        secret = path.read_bytes()
    except OSError:
        raise ConfigError(f"the pseudonym secret {path} is missing",
                          hint="run 'chalkbox box provision' on this data dir")
    if len(secret) != 32:
        raise ConfigError(f"the pseudonym secret {path} is damaged",
                          hint="restore it from backup; a new one would split every student's history")
    return secret
