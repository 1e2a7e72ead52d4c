"""Benchmark the box's durable store (issue 6 goals), side by side in one run.

    .venv/bin/python bench/store.py [--json PATH] [--quick] [--profile]

Measures, on a scratch dir on the repository's disk (not tmpfs):
  * durable appends/s from 40 writer threads sharing ONE appliance.store.Outbox (as the web
    process does), each building its records with InteractionRecord.create; and from 1 thread;
  * median time per single append into an outbox already holding 1,000 records and one
    holding 1,000,000 (prefilled by writing segment files in the Outbox's on-disk format),
    interleaved in rounds so both see the same disk conditions;
  * plain TinyDB (default JSONStorage, table.insert) per insert at 1k and 10k rows.
--quick: 100,000 records instead of 1,000,000 for the big outbox (the JSON keys keep their
names; ``outbox_big_records`` says the size), shorter writer runs, fewer samples.
--profile: after measuring, cProfile one single-threaded append burst into the big outbox.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from pathlib import Path

import _common as c  # sets up sys.path for the repo
from appliance.store import Outbox
from tinydb import TinyDB

SEGMENT_RECORDS = 1000  # BoxConfig.segment_records default
WRITERS = 40

GOAL_WRITES = 1000
GOAL_RATIO = 1.3


def concurrent_writes(directory: Path, threads: int, seconds: float, factory: c.RecordFactory):
    """appends/s with ``threads`` writers sharing one Outbox for ``seconds``."""
    outbox = Outbox(directory, SEGMENT_RECORDS)
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def writer(i: int) -> None:
        rng = random.Random(1000 + i)
        lat = latencies[i]
        barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                record = factory.record(rng)
                t0 = time.perf_counter()
                outbox.append(record)
                lat.append(time.perf_counter() - t0)
                counts[i] += 1
        except BaseException as exc:  # reported, never hidden
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed: {errors[0]!r}")
    total = sum(counts)
    stored = outbox.count()
    if stored != total:
        raise RuntimeError(f"appended {total} records but the outbox holds {stored}")
    all_lat = [x for lat in latencies for x in lat]
    return {"records": total, "seconds": elapsed, "per_s": total / elapsed,
            "p50_ms": c.median_ms(all_lat), "p99_ms": c.pct_ms(all_lat, 0.99)}


def append_costs(outboxes: dict[str, Outbox], per_outbox: int, rounds: int,
                 factory: c.RecordFactory) -> dict[str, list[float]]:
    """Seconds per single append, for each outbox; interleaved in ``rounds`` rounds."""
    rng = random.Random(7)
    samples: dict[str, list[float]] = {name: [] for name in outboxes}
    per_round = max(1, per_outbox // rounds)
    for _ in range(rounds):
        for name, outbox in outboxes.items():
            records = [factory.record(rng) for _ in range(per_round)]
            for record in records:
                t0 = time.perf_counter()
                outbox.append(record)
                samples[name].append(time.perf_counter() - t0)
    return samples


def plain_tinydb_costs(directory: Path, rows: int, inserts: int, factory: c.RecordFactory) -> list[float]:
    """Seconds per table.insert into a plain TinyDB (default JSONStorage) holding ``rows``."""
    directory.mkdir(parents=True, exist_ok=True)
    db = TinyDB(directory / f"plain-{rows}.json")
    table = db.table("records")
    table.insert_multiple(list(factory.docs(rows)))
    extra = list(factory.docs(inserts))
    samples = []
    for doc in extra:
        t0 = time.perf_counter()
        table.insert(doc)
        samples.append(time.perf_counter() - t0)
    db.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile an append burst into the big outbox afterwards")
    args = parser.parse_args()

    big = 100_000 if args.quick else 1_000_000
    small = 1_000
    writer_s, single_s = (4.0, 2.0) if args.quick else (10.0, 5.0)
    per_outbox, rounds = (150, 6) if args.quick else (300, 12)
    tiny_1k, tiny_10k = (30, 10) if args.quick else (50, 20)

    factory = c.RecordFactory()
    root = c.scratch_dir("chalkbox-bench-store-")
    t_start = time.perf_counter()
    try:
        print(f"scratch dir {root} ({'quick' if args.quick else 'full'} run)", flush=True)
        print(f"{WRITERS} writers sharing one Outbox for {writer_s:.0f} s ...", flush=True)
        many = concurrent_writes(root / "writers", WRITERS, writer_s, factory)
        print(f"1 writer for {single_s:.0f} s ...", flush=True)
        one = concurrent_writes(root / "single", 1, single_s, factory)

        print(f"prefilling outboxes with {small:,} and {big:,} records ...", flush=True)
        prefill_small = c.prefill_outbox(root / "small", small, SEGMENT_RECORDS, factory)
        prefill_big = c.prefill_outbox(root / "big", big, SEGMENT_RECORDS, factory, "prefill")
        outboxes = {"small": Outbox(root / "small", SEGMENT_RECORDS),
                    "big": Outbox(root / "big", SEGMENT_RECORDS)}
        print(f"  prefill took {prefill_small:.1f} s + {prefill_big:.1f} s; "
              f"{per_outbox} single appends into each, interleaved ...", flush=True)
        costs = append_costs(outboxes, per_outbox, rounds, factory)
        ms_small, ms_big = c.median_ms(costs["small"]), c.median_ms(costs["big"])
        ratio = ms_big / ms_small

        print("plain TinyDB at 1k and 10k rows ...", flush=True)
        t1k = plain_tinydb_costs(root / "plain", 1_000, tiny_1k, factory)
        t10k = plain_tinydb_costs(root / "plain", 10_000, tiny_10k, factory)
        ms_t1k, ms_t10k = c.median_ms(t1k), c.median_ms(t10k)

        if args.profile:
            rng = random.Random(99)
            records = [factory.record(rng) for _ in range(100)]
            c.profile(f"100 single appends into the {big:,}-record outbox",
                      lambda: [outboxes["big"].append(r) for r in records])
    finally:
        c.cleanup(root)
    total_s = time.perf_counter() - t_start

    big_label = "1m" if big == 1_000_000 else f"{big // 1000}k"
    rows = [
        (f"writes_per_s ({WRITERS} threads, 1 Outbox)", c.fmt(many["per_s"], 0),
         f">= {GOAL_WRITES}", c.verdict(many["per_s"] >= GOAL_WRITES)),
        ("  append latency p50 / p99 (ms)", f"{many['p50_ms']:.1f} / {many['p99_ms']:.1f}", "", ""),
        ("single_writer_per_s (1 thread)", c.fmt(one["per_s"], 0), "", ""),
        ("outbox_ms_1k (median per append)", c.fmt(ms_small, 3), "", ""),
        (f"outbox_ms_{big_label} (median per append)", c.fmt(ms_big, 3), "", ""),
        (f"write_cost_ratio_{big_label}_1k", c.fmt(ratio, 3), f"<= {GOAL_RATIO}",
         c.verdict(ratio <= GOAL_RATIO)),
        ("plain_tinydb_ms_1k (median per insert)", c.fmt(ms_t1k, 3), "", ""),
        ("plain_tinydb_ms_10k (median per insert)", c.fmt(ms_t10k, 3), "", ""),
        ("plain TinyDB ratio 10k/1k", c.fmt(ms_t10k / ms_t1k, 2), "", ""),
    ]
    notes = [
        f"records ~{sum(len(v) for v in factory.fields()['texts'].values())} chars of text each; "
        f"segment_records={SEGMENT_RECORDS}; {many['records']:,} records in {many['seconds']:.1f} s "
        f"({WRITERS} threads), {one['records']:,} in {one['seconds']:.1f} s (1 thread)",
        f"append cost: {len(costs['small'])} appends per outbox, p90 "
        f"{c.pct_ms(costs['small'], 0.9):.3f} ms (1k) / {c.pct_ms(costs['big'], 0.9):.3f} ms "
        f"({big:,}); big outbox prefilled in {prefill_big:.1f} s",
        f"total run {total_s:.0f} s"
        + ("; QUICK run: big outbox holds 100,000 records, not 1,000,000" if args.quick else ""),
    ]
    c.print_table("Chalkbox store benchmark (issue 6)", rows, notes)
    c.write_json(args.json, {
        "quick": args.quick,
        "writers": WRITERS,
        "writes_per_s": round(many["per_s"], 1),
        "writes_p50_ms": round(many["p50_ms"], 3),
        "writes_p99_ms": round(many["p99_ms"], 3),
        "single_writer_per_s": round(one["per_s"], 1),
        "outbox_big_records": big,
        "outbox_ms_1k": round(ms_small, 4),
        "outbox_ms_1m": round(ms_big, 4),
        "write_cost_ratio_1m_1k": round(ratio, 4),
        "plain_tinydb_ms_1k": round(ms_t1k, 4),
        "plain_tinydb_ms_10k": round(ms_t10k, 4),
        "segment_records": SEGMENT_RECORDS,
        "goals": {"writes_per_s": many["per_s"] >= GOAL_WRITES,
                  "write_cost_ratio_1m_1k": ratio <= GOAL_RATIO},
    })


if __name__ == "__main__":
    main()
