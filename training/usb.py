"""USB sync at the centre: ingest a stick, then leave acknowledgements and models on it.

The box marks records synced only when it holds a signed acknowledgement, so for
every box seen on the stick the centre writes ``protocol.ack_file_name(box)``
(``protocol.ack_document``) and ``.sig`` beside it: base64 of the fleet key's
ed25519 signature over the exact bytes, the same key and encoding as a model
bundle's ``manifest.sig``, so the box checks both with the one public key it
trusts. Every good bundle of the box is acknowledged, including bundles the
centre already held (added 0): a stick ingested twice acks twice, harmlessly.
A damaged bundle is neither ingested nor acknowledged, so the box exports its
records again and the centre deduplicates them.

With a published directory, the newest bundle per task for each box's school is
copied to ``protocol.MODELS_DIR_ON_STICK/<school>/<task>/<name>/`` (staged and renamed),
for the box to verify and offer to install.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle import MANIFEST_FILE, TASKS, read_manifest_unverified
from appliance.errors import BundleError
from appliance.fsutil import atomic_write_bytes
from appliance.sync import protocol

from .errors import TrainingError
from .fleet import Fleet, is_plain_id
from .ingest import IngestReport, ingest_bundles
from .publish import bundle_files, copy_bundle, latest, same_bundle
from .store import CentralStore

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StickResult:
    report: IngestReport
    ack_files: list[Path] = dataclasses.field(default_factory=list)
    model_dirs: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)


def stick_root(path: Path) -> Path:
    """The stick's top folder: ``path`` itself, or its parent when ``path`` is one bundle."""
    path = Path(path)
    return path.parent if (path / MANIFEST_FILE).is_file() else path


def signature_line(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    return base64.b64encode(private_key.sign(data)) + b"\n"


def write_ack(root: Path, box_id: str, acks: list[protocol.Ack],
              private_key: Ed25519PrivateKey) -> Path:
    """Write the signed ack file of one box at ``root`` (document first, then its .sig).

    A stick pulled between the two writes leaves a document whose signature does not
    verify, which the box refuses: never an ack it would wrongly trust.
    """
    path = Path(root) / protocol.ack_file_name(box_id)
    document = protocol.ack_document(box_id, acks)
    atomic_write_bytes(path, document)
    atomic_write_bytes(path.with_name(path.name + ".sig"), signature_line(private_key, document))
    return path


def copy_model_to_stick(bundle: Path, root: Path, school_id: str) -> Path:
    """Copy a published bundle to ``<root>/chalkbox-models/<school>/<task>/<name>/`` unless
    it is there (per school: one stick may serve boxes of several schools)."""
    try:
        manifest = read_manifest_unverified(bundle)
    except BundleError as exc:
        raise TrainingError(f"published bundle {bundle} is unreadable: {exc.message}",
                            hint="publish it again with 'chalkbox train publish'")
    dest = Path(root) / protocol.MODELS_DIR_ON_STICK / school_id / manifest.task / bundle.name
    for older in dest.parent.glob("*") if dest.parent.is_dir() else []:
        if older.name != dest.name and older.is_dir() and not older.is_symlink():
            shutil.rmtree(older)  # one bundle per school and task: the centre's choice (LATEST)
    if not same_bundle(bundle, dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_bundle(bundle, dest, bundle_files(manifest))
        if not same_bundle(bundle, dest):
            raise TrainingError(f"the copy of {bundle.name} on the stick does not match",
                                hint="the stick may be failing; try another one")
    return dest


def ingest_stick(store: CentralStore, path: Path, *,
                 private_key: Ed25519PrivateKey | None = None,
                 published_root: Path | None = None, fleet: Fleet | None = None,
                 quarantine_to=None) -> StickResult:
    """Ingest every bundle at ``path``, then acknowledge and hand models back on the stick.

    Damaged bundles are in ``result.report.refused``; the caller raises after
    reporting what did land (``report.raise_if_refused``).
    """
    result = StickResult(ingest_bundles(store, path, quarantine_to, admit=_admit(fleet)))
    root = stick_root(path)
    boxes = {box: acks for box, acks in result.report.acks_by_box().items()
             if _plain(box, result)}
    if private_key is not None:
        for box_id, acks in boxes.items():
            result.ack_files.append(write_ack(root, box_id, acks, private_key))
    if published_root is not None:
        schools = result.report.schools_by_box()
        wanted: dict[tuple[Path, str], None] = {}
        for box_id in boxes:
            registered = fleet.box(box_id) if fleet is not None else None
            school = registered.school_id if registered else schools[box_id]
            for task in TASKS:
                bundle = latest(published_root, task, school)
                if bundle is not None:
                    wanted[(bundle, school)] = None
        result.model_dirs = [copy_model_to_stick(bundle, root, school)
                             for bundle, school in wanted]
    return result


def _admit(fleet: Fleet | None):
    """With a fleet that has registered boxes, only those boxes' bundles are ingested (and
    acknowledged), and only for their own school. A centre with no registered box at all (a
    lab, the demo) takes every bundle."""
    if fleet is None or not fleet.list_boxes():
        return None

    def admit(manifest: dict) -> str | None:
        box = fleet.box(manifest["box_id"])
        if box is None:
            return (f"box {manifest['box_id']!r} is not registered at this centre "
                    "(chalkbox train fleet add-box)")
        if box.school_id != manifest["school_id"]:
            return (f"box {manifest['box_id']!r} is registered for school {box.school_id!r}, "
                    f"not {manifest['school_id']!r}")
        return None
    return admit


def _plain(box_id: str, result: StickResult) -> bool:
    """A box id that cannot be a file name gets no ack file (and the refusal is reported)."""
    if is_plain_id(box_id):
        return True
    result.skipped.append(f"box id {box_id!r} is not a plain name; no ack or model written")
    log.warning("box id %r cannot name an ack file; skipped", box_id)
    return False
