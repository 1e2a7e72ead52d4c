"""The outbox's promises: group commit, idempotency, acknowledgement, retention, disk guard."""
import threading
import time

import pytest

from appliance import records as records_module
from appliance.errors import StoreError
from appliance.records import InteractionRecord
from appliance.store import Outbox
from appliance.store.outbox import SPAN


def record(i, key=None):
    return InteractionRecord.create(box_id="box-1", school_id="s", kind="grade",
                                    texts={"answer": f"a{i}"}, idempotency_key=key)


def test_forty_concurrent_writers_lose_nothing_and_share_writes(tmp_path):
    outbox = Outbox(tmp_path, segment_records=100)
    writes = []
    original = outbox._write

    def counting_write(path, docs, members):
        writes.append(len(docs))
        original(path, docs, members)

    outbox._write = counting_write  # count real segment writes; the write itself is real
    stored, barrier = [], threading.Barrier(40)

    def tablet(n):
        barrier.wait()
        for i in range(10):
            stored.append(outbox.append(record(f"{n}-{i}")).id)

    threads = [threading.Thread(target=tablet, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.id for r in Outbox(tmp_path).records()) == sorted(stored)
    assert len(stored) == 400
    assert len(writes) < 400  # group commit: many appends shared one durable write
    positions = [p for p, _ in Outbox(tmp_path).entries()]
    assert positions == sorted(positions) and len(set(positions)) == 400


def test_idempotency_key_is_honoured_across_a_segment_boundary(tmp_path):
    outbox = Outbox(tmp_path, segment_records=10)
    first = outbox.append(record(0, key="tablet-1-answer-1"))
    for i in range(15):
        outbox.append(record(i + 1))
    again = outbox.append(record(99, key="tablet-1-answer-1"))
    assert again.id == first.id
    assert outbox.count() == 16


def test_acknowledgement_moves_forward_only_and_never_skips(tmp_path):
    outbox = Outbox(tmp_path, segment_records=10)
    for i in range(25):
        outbox.append(record(i))
    positions = [p for p, _ in outbox.entries()]
    assert outbox.acked_through() == -1 and len(outbox.pending()) == 25
    # an ack that starts after unacknowledged records would skip them: refused
    assert not outbox.acknowledge(positions[5], positions[9])
    assert outbox.acknowledge(positions[0], positions[11])
    assert outbox.acked_through() == positions[11]
    assert [p for p, _ in outbox.pending()] == positions[12:]
    assert not outbox.acknowledge(positions[0], positions[3])  # old ack: no step back
    assert outbox.acked_through() == positions[11]
    count, oldest = outbox.unsynced()
    assert count == 13 and oldest.id == list(outbox.records())[12].id


def test_compaction_deletes_only_acknowledged_full_segments(tmp_path):
    outbox = Outbox(tmp_path, segment_records=10)
    for i in range(35):
        outbox.append(record(i))
    positions = [p for p, _ in outbox.entries()]
    assert outbox.compact(0) == []  # nothing acknowledged: nothing goes
    outbox.acknowledge(positions[0], positions[14])  # segment 1 whole, segment 2 half
    assert outbox.compact(3600) == []  # too recent
    removed = outbox.compact(0)
    assert [p.name for p in removed] == ["segment-000001.json"]
    assert [p for p, _ in outbox.entries()] == positions[10:]
    assert positions[10] == 2 * SPAN + 1


def test_disk_guard_refuses_clearly_and_writes_nothing(tmp_path):
    outbox = Outbox(tmp_path, min_free_bytes=1 << 62)
    with pytest.raises(StoreError, match="nearly full"):
        outbox.append(record(0))
    assert outbox.count() == 0


def test_old_records_are_upgraded_on_read(tmp_path, monkeypatch):
    outbox = Outbox(tmp_path)
    outbox.append(record(0))
    # pretend version 2 renamed texts.comment to texts.answer: v1 data must still read
    monkeypatch.setattr(records_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(records_module.MIGRATIONS, 1,
                        lambda doc: {**doc, "texts": {**doc["texts"], "answer": "migrated"}})
    [read] = list(outbox.records())
    assert read.schema_version == 2 and read.texts["answer"] == "migrated"


def test_write_cost_does_not_grow_with_what_is_stored(tmp_path):
    """Coarse guard only (the benchmark measures it properly): a segment of 50 costs the
    same whether 50 or 2,000 records are stored before it."""
    def time_100(outbox):
        start = time.perf_counter()
        for i in range(100):
            outbox.append(record(i))
        return time.perf_counter() - start

    small = Outbox(tmp_path / "small", segment_records=50)
    big = Outbox(tmp_path / "big", segment_records=50)
    for i in range(2000):
        big.append(record(i))
    assert time_100(big) < 3 * time_100(small) + 0.5


def _made_days_ago(days: float, i: int) -> InteractionRecord:
    """A record as the box made it ``days`` ago: its UUIDv7 id and created_at say so."""
    import datetime as dt
    import secrets
    import uuid

    when = time.time() - days * 86_400
    value = (int(when * 1000) << 80) | (0x7 << 76) | (0b10 << 62) | secrets.randbits(62)
    created = dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return InteractionRecord.create(id=str(uuid.UUID(int=value)), created_at=created,
                                    box_id="box-1", school_id="s", kind="grade",
                                    texts={"answer": f"old {i}"})


def test_recent_reads_skip_segments_written_before_and_never_parse_them(tmp_path):
    import os

    outbox = Outbox(tmp_path, segment_records=2)
    old = [outbox.append(_made_days_ago(20, i)) for i in range(2)]     # segment 1
    first = outbox.segments()[0]
    twenty_days_ago = time.time() - 20 * 86_400
    os.utime(first, (twenty_days_ago, twenty_days_ago))
    new = [outbox.append(record(i)) for i in range(3)]                  # segments 2 and 3
    assert list(outbox.records()) == old + new

    content = first.read_bytes()
    first.write_bytes(b"not json: a recent read must not even open this")
    os.utime(first, (twenty_days_ago, twenty_days_ago))
    assert list(outbox.records(since=time.time() - 86_400)) == new
    assert outbox.find(new[0].id) == new[0]
    with pytest.raises(StoreError):  # the skipped segment really is unreadable
        list(outbox.records())

    first.write_bytes(content)
    os.utime(first, (twenty_days_ago, twenty_days_ago))
    assert outbox.find(old[1].id) == old[1]  # its id says when: segment 1 is read for it
    assert outbox.find(_made_days_ago(20, 9).id) is None
    assert outbox.find("not-an-id") is None
