"""Benchmark sync (issue 6 goals): USB export, central ingest, re-ingest, push chunk.

    .venv/bin/python bench/sync.py [--json PATH] [--quick] [--profile]

On a scratch dir on the repository's disk (not tmpfs): a provisioned-looking box
(appliance.config.BoxConfig with box_id/school_id, a roster of 40 nicknames) whose
appliance.store.Outbox holds 100,000 unacknowledged records (prefilled as segment files in
the Outbox's on-disk format). Measures:
  * usb_export_100k_s: appliance.sync.usb.export_to_stick into a directory;
  * ingest_records_per_s: training.ingest.ingest_path of that bundle into a fresh
    training.store.CentralStore; reingest_added: the same bundle again (must add 0);
  * push_chunk_ms: encode_records + build_manifest of one 500-record chunk (no network),
    with the selection (next_outgoing, limit 500) and push_payload shown beside it.
--quick: 10,000 records (the JSON keys keep their names; ``records`` says the size).
--profile: afterwards, cProfile one more export and one more ingest (into a fresh store).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common as c  # sets up sys.path for the repo
from appliance.config import BoxConfig
from appliance.store import Outbox
from appliance.store.roster import Roster
from appliance.sync.outgoing import next_outgoing
from appliance.sync.protocol import CHUNK_RECORDS, push_payload
from appliance.sync.usb import export_to_stick
from appliance.syncbundle import build_manifest, encode_records
from training.ingest import ingest_path
from training.store import CentralStore

GOAL_EXPORT_S = 10.0
GOAL_INGEST = 20_000


def provision(root: Path, records: int, factory: c.RecordFactory) -> tuple[BoxConfig, Outbox, float]:
    config = BoxConfig(data_dir=root / "box", box_id=c.BOX_ID, school_id=c.SCHOOL_ID).validate()
    config.data_dir.mkdir(parents=True)
    roster = Roster(config.roster_path)
    for i, nickname in enumerate(c.NICKNAMES):
        roster.remember(factory.students[i], c.CLASSES[i % len(c.CLASSES)], nickname)
    prefill_s = c.prefill_outbox(config.outbox_dir, records, config.segment_records, factory,
                                 "prefill")
    return config, Outbox(config.outbox_dir, config.segment_records), prefill_s


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="10,000 records: a smoke run")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one more export and ingest afterwards")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000

    factory = c.RecordFactory()
    root = c.scratch_dir("chalkbox-bench-sync-")
    t_start = time.perf_counter()
    try:
        print(f"scratch dir {root} ({'quick' if args.quick else 'full'} run)", flush=True)
        config, outbox, prefill_s = provision(root, n, factory)
        print(f"outbox prefilled with {n:,} records in {prefill_s:.1f} s; exporting ...", flush=True)
        stick = root / "stick"
        stick.mkdir()
        export, export_s = timed(lambda: export_to_stick(outbox, config, stick))
        if export.count != n or export.path is None:
            raise RuntimeError(f"exported {export.count} records, expected {n}")
        bundle_mb = sum(p.stat().st_size for p in export.path.iterdir()) / 1e6

        print("ingesting ...", flush=True)
        store = CentralStore(root / "central" / "chalkbox.db")
        first, ingest_s = timed(lambda: ingest_path(store, export.path))
        added = sum(r.added for r in first)
        if added != n or store.count() != n:
            raise RuntimeError(f"first ingest added {added}, store holds {store.count()}, "
                               f"expected {n}")
        again, reingest_s = timed(lambda: ingest_path(store, export.path))
        reingest_added = sum(r.added for r in again)
        store.close()

        print("push chunk ...", flush=True)
        select, encode, payload = [], [], []
        for _ in range(10):
            batch, s = timed(lambda: next_outgoing(outbox, config, CHUNK_RECORDS))
            select.append(s)
            t0 = time.perf_counter()
            ordered, data = encode_records(batch.records)
            manifest = build_manifest(ordered, data, box_id=config.box_id,
                                      school_id=config.school_id,
                                      outbox_range=(batch.first_position, batch.last_position))
            encode.append(time.perf_counter() - t0)
            _, s = timed(lambda m=manifest, d=data: push_payload(m, d))
            payload.append(s)
        if len(ordered) != CHUNK_RECORDS:
            raise RuntimeError(f"chunk holds {len(ordered)} records")

        if args.profile:
            stick2 = root / "stick2"
            stick2.mkdir()
            again_export = c.profile(f"export_to_stick of {n:,} records",
                                     lambda: export_to_stick(outbox, config, stick2))
            with CentralStore(root / "central2" / "chalkbox.db") as fresh:
                c.profile(f"ingest_path of {n:,} records into a fresh CentralStore",
                          lambda: ingest_path(fresh, again_export.path))
    finally:
        c.cleanup(root)
    total_s = time.perf_counter() - t_start

    per_s = n / ingest_s
    label = "100k" if n == 100_000 else f"{n // 1000}k"
    rows = [
        (f"usb_export_{label}_s", c.fmt(export_s, 2), f"<= {GOAL_EXPORT_S:g}",
         c.verdict(export_s <= GOAL_EXPORT_S)),
        ("  export records/s", c.fmt(n / export_s, 0), "", ""),
        ("ingest_s", c.fmt(ingest_s, 2), "", ""),
        ("ingest_records_per_s", c.fmt(per_s, 0), f">= {GOAL_INGEST:,}",
         c.verdict(per_s >= GOAL_INGEST)),
        ("reingest_s", c.fmt(reingest_s, 2), "", ""),
        ("reingest_added", str(reingest_added), "== 0", c.verdict(reingest_added == 0)),
        (f"push_chunk_ms (encode+manifest, {CHUNK_RECORDS})", c.fmt(c.median_ms(encode), 2), "", ""),
        (f"  select: next_outgoing(limit={CHUNK_RECORDS}) ms", c.fmt(c.median_ms(select), 2), "", ""),
        ("  push_payload ms", c.fmt(c.median_ms(payload), 2), "", ""),
    ]
    notes = [
        f"{n:,} unacknowledged records, roster of {len(c.NICKNAMES)} nicknames (none opted out), "
        f"bundle {bundle_mb:.1f} MB; outbox prefilled in {prefill_s:.1f} s",
        f"total run {total_s:.0f} s" + ("; QUICK run: 10,000 records, not 100,000"
                                        if args.quick else ""),
    ]
    c.print_table("Chalkbox sync benchmark (issue 6)", rows, notes)
    c.write_json(args.json, {
        "quick": args.quick,
        "records": n,
        "usb_export_100k_s": round(export_s, 3),
        "ingest_s": round(ingest_s, 3),
        "ingest_records_per_s": round(per_s, 1),
        "reingest_s": round(reingest_s, 3),
        "reingest_added": reingest_added,
        "push_chunk_ms": round(c.median_ms(encode), 3),
        "push_select_ms": round(c.median_ms(select), 3),
        "push_payload_ms": round(c.median_ms(payload), 3),
        "bundle_mb": round(bundle_mb, 2),
        "goals": {"usb_export_100k_s": export_s <= GOAL_EXPORT_S,
                  "ingest_records_per_s": per_s >= GOAL_INGEST,
                  "reingest_added": reingest_added == 0},
    })


if __name__ == "__main__":
    main()
