
import pytest

from appliance.records import InteractionRecord
from appliance.syncbundle import write_sync_bundle
from training.errors import TrainingError
from training.ingest import ingest_path
from training.store import CentralStore


def bundle(tmp_path, records, name="stick"):
    dest = tmp_path / name
    dest.mkdir(exist_ok=True)
    return write_sync_bundle(records, dest, box_id="box-1", school_id="s")


def records(n):
    return [InteractionRecord.create(box_id="box-1", school_id="s", kind="answer",
                                     texts={"answer": f"a{i}"}, prediction="correct",
                                     confidence=0.8) for i in range(n)]


def test_ingest_is_idempotent_and_overlap_counts_once(tmp_path):
    first, more = records(10), records(5)
    with CentralStore(tmp_path / "c.db") as store:
        [result] = ingest_path(store, bundle(tmp_path, first))
        assert (result.count, result.added) == (10, 10)
        assert ingest_path(store, bundle(tmp_path, first))[0].added == 0
        # a re-export carrying old and new records adds only the new
        overlap = bundle(tmp_path, first + more, name="stick2")
        assert ingest_path(store, overlap)[0].added == 5
        assert store.count() == 15
        assert [r.id for r in store.records()] == sorted(r.id for r in first + more)


def test_damaged_bundle_is_refused_whole(tmp_path):
    path = bundle(tmp_path, records(10))
    raw = (path / "records.jsonl").read_bytes()
    (path / "records.jsonl").write_bytes(raw[:-40])
    with CentralStore(tmp_path / "c.db") as store:
        with pytest.raises(TrainingError, match="refused 1 damaged"):
            ingest_path(store, tmp_path / "stick")
        assert store.count() == 0


def test_good_bundles_beside_a_bad_one_still_land(tmp_path):
    good = bundle(tmp_path, records(3))
    bad = bundle(tmp_path, records(4))
    (bad / "manifest.json").unlink()
    with CentralStore(tmp_path / "c.db") as store:
        with pytest.raises(TrainingError, match="1 other"):
            ingest_path(store, tmp_path / "stick")
        assert store.count() == 3
    assert good.exists()


def test_a_resend_stored_twice_on_the_box_lands_once(tmp_path):
    """Past the box's dedupe window a tablet's re-send gets a new id; the centre keys it too."""
    first = InteractionRecord.create(box_id="box-1", school_id="s", kind="answer",
                                     texts={"answer": "steam"}, idempotency_key="tab-7-42")
    again = InteractionRecord.create(box_id="box-1", school_id="s", kind="answer",
                                     texts={"answer": "steam"}, idempotency_key="tab-7-42")
    other_box = InteractionRecord.create(box_id="box-2", school_id="s", kind="answer",
                                         texts={"answer": "steam"}, idempotency_key="tab-7-42")
    with CentralStore(tmp_path / "c.db") as store:
        assert store.add([first], source="a", box_id="box-1").added == 1
        assert store.add([again], source="b", box_id="box-1").added == 0
        assert store.add([other_box], source="c", box_id="box-2").added == 1
