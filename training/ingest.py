"""Ingest sync bundles (from a USB stick or an upload) into the central store.

Each bundle is verified completely (manifest, sha256, every record) before any of
its records is written, and written in one transaction: a damaged bundle is
refused whole and the others beside it still land. What was ingested, per box,
is kept with the manifests so the stick can be acknowledged (``training.usb``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from appliance.errors import FormatError
from appliance.sync.protocol import Ack
from appliance.syncbundle import find_sync_bundles, read_sync_bundle_lines

from .errors import TrainingError
from .store import CentralStore, IngestResult


@dataclasses.dataclass
class IngestReport:
    """What one ``ingest`` did: results of the good bundles, their manifests, the refusals."""

    results: list[IngestResult] = dataclasses.field(default_factory=list)
    manifests: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)

    def acks_by_box(self) -> dict[str, list[Ack]]:
        """One ack per good bundle (also those already held: added 0), grouped by box."""
        acks: dict[str, list[Ack]] = {}
        for manifest, result in zip(self.manifests, self.results):
            acks.setdefault(manifest["box_id"], []).append(Ack.for_manifest(manifest,
                                                                            result.added))
        return acks

    def schools_by_box(self) -> dict[str, str]:
        return {m["box_id"]: m["school_id"] for m in self.manifests}

    def raise_if_refused(self, quarantine_dir: Path | None = None) -> None:
        if self.refused:
            kept = f"; copies kept in {quarantine_dir}" if quarantine_dir else ""
            raise TrainingError(f"refused {len(self.refused)} damaged bundle(s) (nothing of them "
                                f"was ingested; {len(self.results)} other(s) were): "
                                + "; ".join(self.refused),
                                hint="the boxes export those records again next time" + kept)


def ingest_bundles(store: CentralStore, path: Path, quarantine_to=None,
                   admit=None) -> IngestReport:
    """Ingest one bundle, or every whole bundle directly under ``path``; never half a bundle.

    Damaged bundles are listed in the report's ``refused``, not raised, so the caller
    can still acknowledge the good ones. ``admit(manifest)`` may refuse a whole bundle
    (e.g. from a box the fleet does not know) by returning the reason.
    """
    path = Path(path)
    if not path.is_dir():
        raise TrainingError(f"{path} is not a directory", hint="give a sync bundle or the stick's folder")
    bundles = find_sync_bundles(path)
    if not bundles:
        raise TrainingError(f"no sync bundle found in {path}",
                            hint="export one on the box with 'chalkbox box sync export --to DIR'")
    report = IngestReport()
    for bundle in bundles:
        try:
            manifest, pairs = read_sync_bundle_lines(bundle)
            reason = admit(manifest) if admit is not None else None
            if reason:
                raise FormatError(reason, field="box_id")
        except FormatError as exc:
            report.refused.append(f"{bundle.name}: {exc.message}")
            if quarantine_to is not None:
                quarantine_to(bundle, exc.message)
            continue
        report.results.append(store.add([r for r, _ in pairs], bodies=[line for _, line in pairs],
                                        source=bundle.name, box_id=manifest["box_id"]))
        report.manifests.append(manifest)
    return report


def ingest_path(store: CentralStore, path: Path) -> list[IngestResult]:
    """Ingest one bundle, or every whole bundle directly under ``path`` (a stick's root).

    Each bundle is verified completely before any of its records is written; a bad
    bundle is refused whole, and bundles after it are still ingested; then the
    refusal is raised.
    """
    report = ingest_bundles(store, path)
    report.raise_if_refused()
    return report.results
