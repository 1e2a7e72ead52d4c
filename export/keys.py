"""ed25519 keys for the fleet: generate, load, sign a bundle's manifest."""
from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle import MANIFEST_FILE, SIGNATURE_FILE
from appliance.fsutil import atomic_write_bytes

from .errors import ExportError


def keygen(private_path: Path) -> tuple[Path, Path]:
    """Write a new private key (0600) and its public key next to it (``.pub.pem``)."""
    private_path = Path(private_path)
    public_path = public_key_path_for(private_path)
    if private_path.exists():
        raise ExportError(f"{private_path} already exists",
                          hint="refusing to overwrite a signing key; choose another path")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    atomic_write_bytes(private_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), mode=0o600)
    atomic_write_bytes(public_path, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def public_key_path_for(private_path: Path) -> Path:
    name = Path(private_path).name
    stem = name[:-len(".pem")] if name.endswith(".pem") else name
    return Path(private_path).with_name(stem + ".pub.pem")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"signing key {path} not found",
                          hint="create one with 'chalkbox export keygen PATH'")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ExportError(f"{path} is not an unencrypted PEM private key ({exc})")
    if not isinstance(key, Ed25519PrivateKey):
        raise ExportError(f"{path} is not an ed25519 key", hint="use 'chalkbox export keygen'")
    return key


def sign_bundle(bundle_dir: Path, private_key_path: Path) -> Path:
    """Write ``manifest.sig``: base64 ed25519 signature over the exact manifest bytes."""
    manifest = Path(bundle_dir) / MANIFEST_FILE
    if not manifest.is_file():
        raise ExportError(f"{bundle_dir} has no {MANIFEST_FILE}", hint="is this a bundle directory?")
    signature = load_private_key(private_key_path).sign(manifest.read_bytes())
    sig_path = Path(bundle_dir) / SIGNATURE_FILE
    atomic_write_bytes(sig_path, base64.b64encode(signature) + b"\n")
    return sig_path


def ensure_keypair(private_path: Path) -> tuple[Path, Path]:
    """The demo's convenience: reuse the key at ``private_path`` or create it."""
    if os.path.exists(private_path):
        return Path(private_path), public_key_path_for(private_path)
    return keygen(private_path)
