"""USB sync: export what the centre lacks, refuse damaged bundles, apply signed acks."""
import base64
import random
import shutil

import pytest

from appliance.config import load_config
from appliance.errors import StoreError
from appliance.records import InteractionRecord
from appliance.store import open_outbox
from appliance.sync.protocol import Ack, ack_document, ack_file_name
from appliance.sync.usb import export_to_stick, import_from_stick, list_sticks
from appliance.syncbundle import find_sync_bundles, read_manifest
from export.keys import load_private_key
from training.errors import TrainingError
from training.ingest import ingest_path
from training.store import CentralStore


def fill(box, n, start=0):
    config, outbox = box
    return [outbox.append(InteractionRecord.create(
        box_id=config.box_id, school_id=config.school_id, kind="answer",
        texts={"answer": f"answer {start + i}"})) for i in range(n)]


@pytest.fixture
def box(box_dir):
    config = load_config(box_dir)
    return config, open_outbox(config)


def sign_acks(stick, box_id, acks, private_key_path):
    doc = ack_document(box_id, acks)
    (stick / ack_file_name(box_id)).write_bytes(doc)
    signature = load_private_key(private_key_path).sign(doc)
    (stick / (ack_file_name(box_id) + ".sig")).write_bytes(base64.b64encode(signature))


def test_round_trip_marks_records_synced_and_exports_only_the_rest(box, tmp_path, keypair):
    config, outbox = box
    fill(box, 30)
    stick = tmp_path / "stick"
    stick.mkdir()
    exported = export_to_stick(outbox, config, stick)
    assert exported.count == 30
    manifest = read_manifest(exported.path)
    sign_acks(stick, config.box_id, [Ack.for_manifest(manifest, 30)], keypair[0])
    fill(box, 5, start=30)
    result = import_from_stick(outbox, config, stick)
    assert result.acks_applied == 1 and result.acks_refused is None
    assert len(outbox.pending()) == 5
    assert export_to_stick(outbox, config, stick).count == 5


def test_an_unacknowledged_export_is_exported_again(box, tmp_path):
    config, outbox = box
    fill(box, 12)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        assert export_to_stick(outbox, config, tmp_path / name).count == 12


def test_forged_ack_is_refused_and_changes_nothing(box, tmp_path):
    from export.keys import keygen

    config, outbox = box
    fill(box, 8)
    stick = tmp_path / "stick"
    stick.mkdir()
    manifest = read_manifest(export_to_stick(outbox, config, stick).path)
    other_private, _ = keygen(tmp_path / "other.pem")
    sign_acks(stick, config.box_id, [Ack.for_manifest(manifest, 8)], other_private)
    result = import_from_stick(outbox, config, stick)
    assert result.acks_applied == 0 and "not signed" in result.acks_refused
    assert len(outbox.pending()) == 8


@pytest.mark.slow
def test_pulled_stick_at_random_points_never_half_ingests(box, tmp_path):
    """The copy to the stick is cut at 24 random byte offsets (file truncated, or a file
    missing): the centre refuses each partial bundle whole; the records still reach the
    centre later, exactly once."""
    config, outbox = box
    written = fill(box, 200)
    good = tmp_path / "good"
    good.mkdir()
    bundle = export_to_stick(outbox, config, good).path
    files = sorted(p.name for p in bundle.iterdir())
    total = sum((bundle / f).stat().st_size for f in files)
    rng = random.Random(7)
    with CentralStore(tmp_path / "central.db") as store:
        for trial in range(24):
            stick = tmp_path / f"stick-{trial}"
            partial = stick / bundle.name
            partial.mkdir(parents=True)
            cut = rng.randrange(total)  # bytes copied before the pull
            for name in files:
                size = (bundle / name).stat().st_size
                if cut <= 0:
                    break  # this file never made it
                data = (bundle / name).read_bytes()[:cut]
                (partial / name).write_bytes(data)
                cut -= size
            with pytest.raises(TrainingError):
                ingest_path(store, stick)
            assert store.count() == 0
        stick = tmp_path / "later"
        stick.mkdir()
        export_to_stick(outbox, config, stick)  # nothing acknowledged: all exported again
        ingest_path(store, stick)
        ingest_path(store, stick)
        assert store.count() == 200
        assert {r.id for r in store.records()} == {r.id for r in written}


def test_a_full_stick_is_refused_and_leaves_nothing(box, tmp_path):
    config, outbox = box
    fill(box, 400)
    from helpers import small_tmpfs

    with small_tmpfs(tmp_path / "tiny-stick", "64k") as stick:
        with pytest.raises(StoreError, match="free"):
            export_to_stick(outbox, config, stick)
        assert find_sync_bundles(stick) == []
        assert len(outbox.pending()) == 400


def test_sticks_are_listed_under_the_mount_root(tmp_path):
    (tmp_path / "KINGSTON").mkdir()
    (tmp_path / ".hidden").mkdir()
    assert list_sticks(tmp_path) == [tmp_path / "KINGSTON"]
    assert list_sticks(tmp_path / "missing") == []
    shutil.rmtree(tmp_path / "KINGSTON")


def test_only_this_schools_verified_models_are_offered(box, tmp_path, grade_bundle):
    config, outbox = box
    stick = tmp_path / "stick"
    mine = stick / "chalkbox-models" / config.school_id / "grade" / grade_bundle.name
    theirs = stick / "chalkbox-models" / "other-school" / "grade" / grade_bundle.name
    broken = stick / "chalkbox-models" / config.school_id / "grade" / "broken"
    for dest in (mine, theirs, broken):
        shutil.copytree(grade_bundle, dest)
    (broken / "model.onnx").write_bytes(b"tampered")
    assert import_from_stick(outbox, config, stick).models == [mine]
