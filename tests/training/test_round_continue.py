"""`train round --continue-teacher`: which teacher a round builds on (the fleet simulation in
tests/test_fleet_rounds.py runs it end to end)."""
import json

import pytest

from appliance.content import demo_content_dir
from training.errors import TrainingError
from training.publish import publish
from training.round import RoundConfig, _teacher_base, production_teacher
from training.round_state import RoundState


def config(tmp_path, keypair):
    return RoundConfig(centre_dir=tmp_path / "centre", signing_key=keypair[0],
                       eval_data=demo_content_dir(), continue_teacher=True)


def test_nothing_in_production_means_the_base_model(tmp_path, keypair):
    cfg = config(tmp_path, keypair)
    assert production_teacher(cfg) is None
    state = RoundState(round_id="round-0001", directory=tmp_path / "centre/rounds/round-0001")
    out = state.stage_dir("teacher")
    out.mkdir(parents=True)
    assert _teacher_base(cfg, state, out) is None
    assert json.loads((out / "continued-from.json").read_text()) == {}  # decided once


def test_a_production_model_no_round_made_is_refused(tmp_path, keypair, grade_bundle):
    cfg = config(tmp_path, keypair)
    publish(grade_bundle, cfg.centre.prepare().published_root, keypair[1])
    with pytest.raises(TrainingError, match="not made by a round") as refused:
        production_teacher(cfg)
    assert "without --continue-teacher" in refused.value.hint


def test_a_resumed_round_keeps_its_recorded_base_and_refuses_a_lost_one(tmp_path, keypair):
    cfg = config(tmp_path, keypair)
    state = RoundState(round_id="round-0002", directory=tmp_path / "centre/rounds/round-0002")
    out = state.stage_dir("teacher")
    out.mkdir(parents=True)
    teacher = tmp_path / "centre/rounds/round-0001/teacher"
    teacher.mkdir(parents=True)
    (teacher / "chalkbox.json").write_text("{}")
    (out / "continued-from.json").write_text(json.dumps({"round": "round-0001",
                                                         "teacher": str(teacher)}))
    assert _teacher_base(cfg, state, out) == {"round": "round-0001", "teacher": str(teacher)}
    (teacher / "chalkbox.json").unlink()
    with pytest.raises(TrainingError, match="is gone"):
        _teacher_base(cfg, state, out)
