import multiprocessing
import threading

from appliance.records import InteractionRecord
from appliance.store import Outbox


def record(i, box="box-1"):
    return InteractionRecord.create(box_id=box, school_id="s", kind="grade",
                                    texts={"answer": f"a{i}"})


def test_append_is_read_back_in_order_across_segments(tmp_path):
    outbox = Outbox(tmp_path, segment_records=10)
    written = [record(i) for i in range(35)]
    for r in written:
        outbox.append(r)
    assert len(outbox.segments()) == 4
    assert list(outbox.records()) == written
    assert outbox.count() == 35


def test_concurrent_threads_lose_nothing(tmp_path):
    outbox = Outbox(tmp_path, segment_records=50)
    written = []

    def writer(n):
        for i in range(n):
            r = record(i)
            outbox.append(r)
            written.append(r.id)

    threads = [threading.Thread(target=writer, args=(20,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.id for r in outbox.records()) == sorted(written)


def _process_writer(directory, n, box):
    outbox = Outbox(directory, segment_records=50)
    for i in range(n):
        outbox.append(record(i, box))


def test_concurrent_processes_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(tmp_path, 30, f"box-{p}")) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    counts = {}
    for r in Outbox(tmp_path).records():
        counts[r.box_id] = counts.get(r.box_id, 0) + 1
    assert counts == {f"box-{p}": 30 for p in range(4)}
