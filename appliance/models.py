"""Installed model bundles on the box: install, list, roll back, load.

Layout: ``<data_dir>/models/<task>/<model_id>-<version>/`` per installed bundle,
with ``current`` and ``previous`` symlinks per task. Switching is one atomic
rename of a symlink, so a reader sees the old model or the new one, never a mix.
A bundle is verified before it is copied in, and the copy is verified again.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .bundle import (MANIFEST_FILE, TASKS, ModelManifest, read_manifest_unverified,
                     verify_bundle)
from .errors import BundleError
from .fsutil import fsync_dir, fsync_tree

CURRENT, PREVIOUS = "current", "previous"


def _switch(link: Path, target_name: str) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def install_bundle(models_dir: Path, source: Path, public_key: Path) -> ModelManifest:
    """Verify ``source``, copy it in, verify the copy, make it current; keep the old as previous."""
    manifest = verify_bundle(source, public_key)
    task_dir = Path(models_dir) / manifest.task
    task_dir.mkdir(parents=True, exist_ok=True)
    final = task_dir / manifest.name
    if final.exists():
        same = (final / MANIFEST_FILE).read_bytes() == (Path(source) / MANIFEST_FILE).read_bytes()
        if not same:
            raise BundleError(f"{manifest.name} is already installed with different content",
                              hint="a rebuilt model needs a new version; build it with --version")
        verify_bundle(final, public_key)
    else:
        staging = task_dir / f".staging-{manifest.name}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(source, staging)
            smoke_test(staging, verify_bundle(staging, public_key))  # what we copied was signed
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # the current model stays as it was
            raise
        fsync_tree(staging)
        os.replace(staging, final)
        fsync_dir(task_dir)
    current = task_dir / CURRENT
    if current.is_symlink() and os.readlink(current) != manifest.name:
        _switch(task_dir / PREVIOUS, os.readlink(current))
    _switch(current, manifest.name)
    return manifest


SMOKE_PAIR = ("Plants need light and water to grow.", "They need sunlight and water.")


def smoke_test(bundle_dir: Path, manifest: ModelManifest) -> None:
    """Load the bundle in onnxruntime and predict once, before it may become current."""
    import numpy as np

    from .inference.engine import Embedder, OnnxModel

    try:
        if manifest.task == "embed":
            vectors = Embedder(bundle_dir, manifest).embed(list(SMOKE_PAIR))
            ok = vectors.ndim == 2 and len(vectors) == 2 and np.allclose(
                np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
            output_shape = vectors.shape
        else:
            probabilities = OnnxModel(bundle_dir, manifest).probabilities([SMOKE_PAIR] * 2)
            ok = probabilities.shape == (2, len(manifest.labels)) and bool(
                np.all(np.isfinite(probabilities)))
            output_shape = probabilities.shape
    except BundleError:
        raise
    except Exception as exc:  # onnxruntime's own errors: the model does not run here
        raise BundleError(f"{manifest.name} does not run: {type(exc).__name__}: {exc}",
                          hint="the bundle may need a newer Chalkbox, or was built wrongly")
    if not ok:
        raise BundleError(f"{manifest.name} gives unusable output {output_shape} on a "
                          "smoke test", hint="do not install this bundle; report it to the centre")


def current_bundle_dir(models_dir: Path, task: str = "grade") -> Path:
    link = Path(models_dir) / task / CURRENT
    if not link.is_symlink():
        raise BundleError(f"no {task} model is installed in {models_dir}",
                          hint="install one with 'chalkbox box model install BUNDLE_DIR'")
    return link.parent / os.readlink(link)


def rollback(models_dir: Path, public_key: Path, task: str = "grade") -> ModelManifest:
    task_dir = Path(models_dir) / task
    previous = task_dir / PREVIOUS
    if not previous.is_symlink():
        raise BundleError(f"there is no previous {task} model to roll back to")
    target = os.readlink(previous)
    manifest = verify_bundle(task_dir / target, public_key)
    current = os.readlink(task_dir / CURRENT)
    _switch(task_dir / CURRENT, target)
    _switch(previous, current)
    return manifest


def installed(models_dir: Path) -> list[dict]:
    """What is installed, per task, for listing (unverified; never used to decide what runs)."""
    rows = []
    for task in TASKS:
        task_dir = Path(models_dir) / task
        if not task_dir.is_dir():
            continue
        links = {name: os.readlink(task_dir / name) for name in (CURRENT, PREVIOUS)
                 if (task_dir / name).is_symlink()}
        for path in sorted(p for p in task_dir.iterdir()
                           if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")):
            manifest = read_manifest_unverified(path)
            role = next((name for name, target in links.items() if target == path.name), "")
            rows.append({"task": task, "model_id": manifest.model_id, "version": manifest.version,
                         "role": role, "path": str(path)})
    return rows
