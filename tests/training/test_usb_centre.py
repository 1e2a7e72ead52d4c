"""`chalkbox train ingest` at the centre: acks and models written back onto the stick."""
import json
import shutil

import pytest
from tests_cli import run_chalkbox

from appliance.bundle import verify_bundle
from appliance.errors import FormatError
from appliance.records import InteractionRecord
from appliance.sync import protocol
from appliance.syncbundle import read_manifest, write_sync_bundle
from export.keys import sign_bundle
from training.fleet import Fleet
from training.publish import publish
from training.store import CentralStore


def records(n, box):
    return [InteractionRecord.create(box_id=box, school_id="school-1", kind="answer",
                                     texts={"answer": f"{box} {i}"}) for i in range(n)]


def export(stick, box, n, outbox):
    return write_sync_bundle(records(n, box), stick, box_id=box, school_id="school-1",
                             outbox_range=outbox)


@pytest.fixture
def stick(tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    export(stick, "box-1", 3, (0, 2))
    export(stick, "box-1", 2, (3, 4))
    export(stick, "box-2", 4, (0, 3))
    return stick


def ingest(tmp_path, stick, *args):
    return run_chalkbox("train", "ingest", stick, "--centre-dir", tmp_path / "centre", *args,
                        timeout=120)


def test_ingest_with_key_writes_signed_acks_per_box(tmp_path, stick, keypair):
    done = ingest(tmp_path, stick, "--key", keypair[0])
    assert done.returncode == 0, done.stderr
    one = protocol.read_ack_file(stick / protocol.ack_file_name("box-1"), keypair[1])
    two = protocol.read_ack_file(stick / protocol.ack_file_name("box-2"), keypair[1])
    assert [(a.outbox_from, a.outbox_to, a.count, a.added) for a in one] == [(0, 2, 3, 3),
                                                                                (3, 4, 2, 2)]
    assert [(a.box_id, a.count, a.added) for a in two] == [("box-2", 4, 4)]
    sig = (stick / (protocol.ack_file_name("box-1") + ".sig")).read_bytes()
    assert sig.endswith(b"\n") and sig.count(b"\n") == 1
    assert not [p.name for p in stick.iterdir() if p.name.startswith(".")]
    # the stick comes back again: nothing new, but every bundle is acknowledged again
    again = ingest(tmp_path, stick, "--key", keypair[0])
    assert again.returncode == 0, again.stderr
    acks = protocol.read_ack_file(stick / protocol.ack_file_name("box-1"), keypair[1])
    assert sorted((a.count, a.added, a.duplicates) for a in acks) == [(2, 0, 2), (3, 0, 3)]


def test_a_changed_ack_file_does_not_verify(tmp_path, stick, keypair):
    assert ingest(tmp_path, stick, "--key", keypair[0]).returncode == 0
    path = stick / protocol.ack_file_name("box-2")
    path.write_bytes(path.read_bytes().replace(b'"count": 4', b'"count": 9'))
    with pytest.raises(FormatError, match="not signed"):
        protocol.read_ack_file(path, keypair[1])


def test_a_damaged_bundle_is_refused_and_not_acked_but_the_rest_are(tmp_path, stick, keypair):
    bad = export(stick, "box-2", 3, (4, 6))
    data = (bad / "records.jsonl").read_bytes()
    (bad / "records.jsonl").write_bytes(data[:-30])  # a stick pulled mid-copy
    done = ingest(tmp_path, stick, "--key", keypair[0])
    assert done.returncode != 0 and "refused 1 damaged" in done.stderr
    assert bad.is_dir()  # moved nowhere
    acks = protocol.read_ack_file(stick / protocol.ack_file_name("box-2"), keypair[1])
    assert [(a.outbox_from, a.count) for a in acks] == [(0, 4)]
    assert read_manifest(bad)["first_id"] not in {a.first_id for a in acks}
    with CentralStore(tmp_path / "centre" / "chalkbox.db") as store:
        assert store.count("box-2") == 4 and store.count("box-1") == 5


def test_without_key_no_ack_is_written_and_store_option_still_works(tmp_path, stick):
    store = tmp_path / "elsewhere.db"
    done = run_chalkbox("train", "ingest", stick, "--store", store)
    assert done.returncode == 0, done.stderr
    assert not list(stick.glob("chalkbox-ack-*"))
    with CentralStore(store) as central:
        assert central.count() == 9


def test_published_copies_the_newest_bundle_for_the_boxs_school(tmp_path, stick, keypair,
                                                                 grade_bundle):
    published = tmp_path / "centre" / "published"
    publish(grade_bundle, published, keypair[1])
    done = ingest(tmp_path, stick, "--published", published)
    assert done.returncode == 0, done.stderr
    copied = stick / protocol.MODELS_DIR_ON_STICK / "school-1" / "grade" / "grade-tiny-1.0.0"
    assert verify_bundle(copied, keypair[1]).version == "1.0.0"
    assert not list(stick.rglob(".staging-*"))
    # a newer bundle published for school-1: the next visit replaces the older one on the
    # stick (one bundle per school and task: the centre's LATEST, so a rollback works too)
    newer = tmp_path / "newer"
    shutil.copytree(grade_bundle, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["version"] = "2.0.0"
    (newer / "manifest.json").write_text(json.dumps(manifest))
    sign_bundle(newer, keypair[0])
    publish(newer, published, keypair[1], school_id="school-1")
    done = ingest(tmp_path, stick, "--published", published)
    assert done.returncode == 0, done.stderr
    grade_dir = stick / protocol.MODELS_DIR_ON_STICK / "school-1" / "grade"
    assert [p.name for p in grade_dir.iterdir()] == ["grade-tiny-2.0.0"]
    assert verify_bundle(grade_dir / "grade-tiny-2.0.0", keypair[1]).version == "2.0.0"


def test_a_registered_fleet_refuses_strangers_and_wrong_schools(tmp_path, stick, keypair):
    with Fleet(tmp_path / "centre" / "chalkbox.db") as fleet:
        fleet.add_box("box-1", "school-9")  # registered, but for another school
    done = ingest(tmp_path, stick)
    assert done.returncode != 0
    line, = done.stderr.strip().splitlines()
    assert "registered for school 'school-9'" in line and "box-2' is not registered" in line
    with CentralStore(tmp_path / "centre" / "chalkbox.db") as store:
        assert store.count() == 0
    assert not list(stick.glob("chalkbox-ack-*"))


def test_a_tampered_bundle_is_refused_quarantined_and_the_rest_lands(tmp_path):
    """`chalkbox train ingest` of a stick with one good and one tampered bundle."""
    from appliance.records import InteractionRecord
    from appliance.syncbundle import write_sync_bundle
    from tests_cli import run_chalkbox
    from training.store import CentralStore

    stick = tmp_path / "stick"
    stick.mkdir()
    make = lambda n: [InteractionRecord.create(box_id="box-9", school_id="s", kind="grade",  # noqa: E731
                                               texts={"answer": f"{n}-{i}"}) for i in range(3)]
    write_sync_bundle(make("good"), stick, box_id="box-9", school_id="s")
    bad = write_sync_bundle(make("bad"), stick, box_id="box-9", school_id="s")
    text = (bad / "records.jsonl").read_text().replace("bad-0", "evil")
    (bad / "records.jsonl").write_text(text)
    centre = tmp_path / "centre"
    result = run_chalkbox("train", "ingest", stick, "--centre-dir", centre)
    assert result.returncode != 0
    line, = result.stderr.strip().splitlines()
    assert "refused 1 damaged bundle" in line and "quarantine" in line
    with CentralStore(centre / "chalkbox.db") as store:
        assert store.count() == 3
    kept = list((centre / "quarantine").iterdir())
    assert len(kept) == 1 and "box-9" in kept[0].name
    assert "evil" in (kept[0] / "records.jsonl").read_text()
    assert "quarantined" in (centre / "centre.log").read_text()
