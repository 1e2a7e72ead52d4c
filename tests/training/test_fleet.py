import hashlib
import sqlite3

import json

import pytest
from tests_cli import run_chalkbox

from appliance.errors import FormatError
from appliance.records import InteractionRecord
from training.errors import TrainingError
from training.fleet import Fleet
from training.store import CentralStore


def test_token_is_returned_once_and_stored_only_as_its_hash(tmp_path):
    db = tmp_path / "chalkbox.db"
    with Fleet(db) as fleet:
        token = fleet.add_box("box-1", "school-1")
        assert len(token) >= 40
        info = fleet.authenticate("box-1", token)
        assert (info.box_id, info.school_id) == ("box-1", "school-1")
    raw = sqlite3.connect(db).execute("SELECT token_sha256 FROM boxes").fetchall()
    assert raw == [(hashlib.sha256(token.encode()).hexdigest(),)]
    assert token.encode() not in db.read_bytes()


def test_wrong_token_unknown_box_and_junk_are_refused(tmp_path):
    with Fleet(tmp_path / "c.db") as fleet:
        token = fleet.add_box("box-1", "school-1")
        other = fleet.add_box("box-2", "school-1")
        assert fleet.authenticate("box-1", other) is None
        assert fleet.authenticate("box-9", token) is None
        assert fleet.authenticate("box-1", "") is None
        assert fleet.authenticate("box-1", token + "x") is None
        assert fleet.authenticate("box-1", "é" * 10) is None
        assert fleet.authenticate("../box-1", token) is None
        assert fleet.authenticate(None, None) is None


def test_adding_twice_refuses_unless_rotating_and_rotation_kills_the_old_token(tmp_path):
    with Fleet(tmp_path / "c.db") as fleet:
        old = fleet.add_box("box-1", "school-1")
        with pytest.raises(TrainingError, match="already registered") as info:
            fleet.add_box("box-1", "school-1")
        assert "--rotate" in info.value.hint
        new = fleet.add_box("box-1", "school-2", rotate=True)
        assert fleet.authenticate("box-1", old) is None
        assert fleet.authenticate("box-1", new).school_id == "school-2"


@pytest.mark.parametrize("box_id", ["", "a/b", "../x", ".hidden", "x" * 65, "with space"])
def test_box_ids_must_be_plain_names(tmp_path, box_id):
    with Fleet(tmp_path / "c.db") as fleet:
        with pytest.raises(TrainingError, match="plain id"):
            fleet.add_box(box_id, "school-1")


def test_list_boxes_shows_reports_and_records_ingested(tmp_path):
    db = tmp_path / "c.db"
    with Fleet(db) as fleet:
        fleet.add_box("box-2", "school-1")
        fleet.add_box("box-1", "school-1")
        fleet.record_report("box-1", {"grade": "1.0.0"}, {"disk_free_mb": 900})
    records = [InteractionRecord.create(box_id="box-1", school_id="school-1", kind="answer",
                                        texts={"answer": str(i)}) for i in range(3)]
    with CentralStore(db) as store:
        store.add(records, source="test", box_id="box-1")
    with Fleet(db) as fleet:
        one, two = fleet.list_boxes()
    assert (one.box_id, one.records, one.models, one.health) == \
        ("box-1", 3, {"grade": "1.0.0"}, {"disk_free_mb": 900})
    assert one.last_seen is not None
    assert (two.box_id, two.records, two.last_seen, two.models) == ("box-2", 0, None, {})


def test_reports_are_validated(tmp_path):
    with Fleet(tmp_path / "c.db") as fleet:
        fleet.add_box("box-1", "school-1")
        with pytest.raises(FormatError) as info:
            fleet.record_report("box-1", {"grade": 3}, {})
        assert info.value.field == "models"
        with pytest.raises(FormatError) as info:
            fleet.record_report("box-1", {}, {"blob": "x" * 20000})
        assert info.value.field == "health"
        with pytest.raises(TrainingError, match="not registered"):
            fleet.record_report("box-9", {}, {})


def test_cli_adds_a_box_prints_its_token_once_and_lists_it(tmp_path):
    centre = tmp_path / "centre"
    added = run_chalkbox("train", "fleet", "add-box", "--centre-dir", centre, "--box-id", "box-7",
                         "--school-id", "school-1")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    with Fleet(centre / "chalkbox.db") as fleet:
        assert fleet.authenticate("box-7", token).school_id == "school-1"
    again = run_chalkbox("train", "fleet", "add-box", "--centre-dir", centre, "--box-id",
                         "box-7", "--school-id", "school-1")
    assert again.returncode == 1 and "--rotate" in again.stderr and "Traceback" not in again.stderr
    listed = run_chalkbox("train", "fleet", "list", "--centre-dir", centre, "--json")
    assert listed.returncode == 0, listed.stderr
    [box] = json.loads(listed.stdout)
    assert (box["box_id"], box["school_id"], box["records"]) == ("box-7", "school-1", 0)
    assert token not in listed.stdout
