"""The centre's published model bundles: what boxes may download, per school or for all.

Layout (default ``var/central/published``)::

    <scope>/<task>/<model_id>-<version>/   a whole, signed bundle (as built by export)
    <scope>/<task>/LATEST                  the name of the bundle boxes should run

``scope`` is ``all`` or a school id; a school's own bundle wins over ``all``.
Publishing is the operator's decision of what boxes run next: LATEST names the
bundle published last, so publishing an earlier bundle again is how a fleet rolls
back. A bundle is verified with the fleet's public key before it is copied, copied
into a hidden staging directory and renamed into place, and only then does LATEST
move (one atomic file write): a reader sees the old bundle or the new one, whole.
A bundle name is the only handle the box has on a file (protocol.MODEL_FILE_PATH),
so one name never stands for two different bundles anywhere under the root.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from appliance.bundle import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    TASKS,
    ModelManifest,
    read_manifest_unverified,
    verify_bundle,
)
from appliance.errors import BundleError
from appliance.fsutil import atomic_write_text, first_file_problem, publish_dir

from .errors import TrainingError

ALL_SCOPE = "all"
LATEST_FILE = "LATEST"
STAGING_PREFIX = ".staging-"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name))


def scope_for(school_id: str | None) -> str:
    if school_id is None:
        return ALL_SCOPE
    if school_id == ALL_SCOPE or not is_plain_name(school_id) or len(school_id) > 64:
        raise TrainingError(f"school id {school_id!r} cannot name a published scope",
                            hint="use the school's plain id (letters, digits, '-', '_', '.'); "
                                 f"'{ALL_SCOPE}' is reserved for every school")
    return school_id


def bundle_files(manifest: ModelManifest) -> list[str]:
    """Every file of a bundle a box may fetch: manifest, signature and what the manifest lists."""
    return [MANIFEST_FILE, SIGNATURE_FILE, *sorted(manifest.files)]


def copy_bundle(src: Path, dest: Path, files: list[str]) -> None:
    """Copy the listed files of a bundle to ``dest`` atomically (staged, fsynced, renamed)."""
    staging = dest.with_name(STAGING_PREFIX + dest.name)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in files:
            shutil.copyfile(src / name, staging / name)
        publish_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def same_bundle(a: Path, b: Path) -> bool:
    """True when ``b`` is a whole copy of bundle ``a`` (same signed manifest, files intact)."""
    try:
        if (a / MANIFEST_FILE).read_bytes() != (b / MANIFEST_FILE).read_bytes() or \
                (a / SIGNATURE_FILE).read_bytes() != (b / SIGNATURE_FILE).read_bytes():
            return False
    except OSError:
        return False
    try:
        return first_file_problem(b, read_manifest_unverified(b).files) is None
    except BundleError:
        return False


def publish(bundle_dir: Path, published_root: Path, public_key: Path,
            school_id: str | None = None) -> Path:
    """Verify ``bundle_dir``, copy it under its scope and task, then point LATEST at it."""
    bundle_dir, root = Path(bundle_dir), Path(published_root)
    scope = scope_for(school_id)
    try:
        manifest = verify_bundle(bundle_dir, public_key)
    except BundleError as exc:
        raise TrainingError(f"refusing to publish {bundle_dir}: {exc.message}", hint=exc.hint)
    name = manifest.name
    if not is_plain_name(name):
        raise TrainingError(f"bundle name {name!r} (model_id-version) is not a plain name",
                            hint="rebuild it with a model id and version made of letters, "
                                 "digits, '-', '_' and '.'")
    task_dir = root / scope / manifest.task
    dest = task_dir / name
    _refuse_name_clash(root, name, bundle_dir)
    if not same_bundle(bundle_dir, dest):
        task_dir.mkdir(parents=True, exist_ok=True)
        copy_bundle(bundle_dir, dest, bundle_files(manifest))
        try:
            verify_bundle(dest, public_key)
        except BundleError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise TrainingError(f"the published copy {dest} does not verify: {exc.message}",
                                hint="check the disk of the published directory; publish again")
    atomic_write_text(task_dir / LATEST_FILE, name + "\n")
    return dest


def _refuse_name_clash(root: Path, name: str, bundle_dir: Path) -> None:
    if not root.is_dir():
        return
    signed = (bundle_dir / MANIFEST_FILE).read_bytes()
    for other in root.glob(f"*/*/{name}/{MANIFEST_FILE}"):
        if other.read_bytes() != signed:
            raise TrainingError(f"a different bundle named {name} is already published "
                                f"({other.parent})",
                                hint="bump the version: boxes fetch bundles by name, so one "
                                     "name must mean one bundle")


def latest(published_root: Path, task: str, school_id: str | None) -> Path | None:
    """The bundle a box of ``school_id`` should run for ``task``: its school's, else ``all``."""
    if task not in TASKS:
        return None
    for scope in visible_scopes(school_id):
        path = _latest_in(Path(published_root) / scope / task)
        if path is not None:
            return path
    return None


def visible_scopes(school_id: str | None) -> list[str]:
    scopes = [school_id] if is_plain_name(school_id) and school_id != ALL_SCOPE else []
    return scopes + [ALL_SCOPE]


def find_published(published_root: Path, name: str, school_id: str | None) -> Path | None:
    """A published bundle by name, among the scopes a box of ``school_id`` may see."""
    if not is_plain_name(name):
        return None
    for scope in visible_scopes(school_id):
        for task in TASKS:
            path = Path(published_root) / scope / task / name
            if (path / MANIFEST_FILE).is_file():
                return path
    return None


def _latest_in(task_dir: Path) -> Path | None:
    try:
        name = (task_dir / LATEST_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    path = task_dir / name
    if is_plain_name(name) and (path / MANIFEST_FILE).is_file():
        return path
    return None
