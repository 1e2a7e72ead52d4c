"""Which teacher a round builds on: by default the one that made production (the fleet
simulation in tests/test_fleet_rounds.py runs it end to end)."""
import json

import pytest

from appliance.content import demo_content_dir
from training.errors import TrainingError
from training.publish import publish
from training.round import RoundConfig, _teacher_base, production_teacher
from training.round_state import RoundState


def config(tmp_path, keypair):
    return RoundConfig(centre_dir=tmp_path / "centre", signing_key=keypair[0],
                       eval_data=demo_content_dir())


def teacher_dir(tmp_path, round_id):
    state = RoundState(round_id=round_id, directory=tmp_path / "centre/rounds" / round_id)
    out = state.stage_dir("teacher")
    out.mkdir(parents=True)
    return state, out


def test_nothing_in_production_means_the_base_model_decided_once(tmp_path, keypair):
    cfg = config(tmp_path, keypair)
    assert cfg.continue_teacher  # the default
    assert production_teacher(cfg) == "nothing is in production yet"
    state, out = teacher_dir(tmp_path, "round-0001")
    assert _teacher_base(cfg, state, out) == {"reason": "nothing is in production yet"}
    recorded = json.loads((out / "continued-from.json").read_text())
    assert recorded == {"reason": "nothing is in production yet"}


def test_a_hand_published_production_model_means_the_base_model(tmp_path, keypair,
                                                                grade_bundle):
    cfg = config(tmp_path, keypair)
    publish(grade_bundle, cfg.centre.prepare().published_root, keypair[1])
    reason = production_teacher(cfg)
    assert isinstance(reason, str) and "not made by a round" in reason


def test_a_resumed_round_keeps_its_recorded_base_and_refuses_a_lost_one(tmp_path, keypair):
    cfg = config(tmp_path, keypair)
    _, teacher = teacher_dir(tmp_path, "round-0001")
    (teacher / "chalkbox.json").write_text("{}")
    state, out = teacher_dir(tmp_path, "round-0002")
    chosen = {"round": "round-0001", "teacher": str(teacher)}
    (out / "continued-from.json").write_text(json.dumps(chosen))
    assert _teacher_base(cfg, state, out) == chosen  # not re-chosen on resume
    (teacher / "chalkbox.json").unlink()
    with pytest.raises(TrainingError, match="is gone") as lost:
        _teacher_base(cfg, state, out)
    assert "--from-base" in lost.value.hint
