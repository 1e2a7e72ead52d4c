"""Ingest sync bundles (from a USB stick or an upload) into the central store."""
from __future__ import annotations

from pathlib import Path

from appliance.errors import FormatError
from appliance.syncbundle import find_sync_bundles, read_sync_bundle

from .errors import TrainingError
from .store import CentralStore, IngestResult


def ingest_path(store: CentralStore, path: Path) -> list[IngestResult]:
    """Ingest one bundle, or every whole bundle directly under ``path`` (a stick's root).

    Each bundle is verified completely before any of its records is written; a bad
    bundle is refused whole, and bundles after it are still ingested.
    """
    path = Path(path)
    if not path.is_dir():
        raise TrainingError(f"{path} is not a directory", hint="give a sync bundle or the stick's folder")
    bundles = find_sync_bundles(path)
    if not bundles:
        raise TrainingError(f"no sync bundle found in {path}",
                            hint="export one on the box with 'chalkbox box sync export --to DIR'")
    results, refused = [], []
    for bundle in bundles:
        try:
            manifest, records = read_sync_bundle(bundle)
        except FormatError as exc:
            refused.append(f"{bundle.name}: {exc.message}")
            continue
        results.append(store.add(records, source=bundle.name, box_id=manifest["box_id"]))
    if refused:
        raise TrainingError(f"refused {len(refused)} damaged bundle(s) (nothing of them was "
                            f"ingested; {len(results)} other(s) were): " + "; ".join(refused),
                            hint="export those bundles again from their boxes")
    return results
