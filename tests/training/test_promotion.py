"""The promotion rule and the round's persisted, forward-only state."""
import json

import pytest

from training.errors import TrainingError
from training.promotion import PromotionRule, decide
from training.round_state import STAGES, RoundState, open_round


def evaluation(macro_f1, slices):
    return {"macro_f1": macro_f1,
            "slices": {"subject": {name: {"n": n, "macro_f1": f} for name, (n, f) in
                                   slices.items()}}}


PRODUCTION = evaluation(0.70, {"physics": (50, 0.70), "biology": (50, 0.70), "tiny": (5, 0.9)})


def test_the_first_model_is_promoted():
    assert decide(evaluation(0.5, {}), None, PromotionRule()).promote


def test_a_model_must_beat_production_by_the_margin():
    rule = PromotionRule(min_gain=0.02)
    better = evaluation(0.73, {"physics": (50, 0.73), "biology": (50, 0.73), "tiny": (5, 0.9)})
    barely = evaluation(0.71, {"physics": (50, 0.71), "biology": (50, 0.71), "tiny": (5, 0.9)})
    assert decide(better, PRODUCTION, rule).promote
    decision = decide(barely, PRODUCTION, rule)
    assert not decision.promote
    assert "below the required" in decision.reasons[0]
    assert decision.gain == pytest.approx(0.01)


def test_a_slice_that_drops_too_much_vetoes_even_a_better_model():
    rule = PromotionRule(min_gain=0.01, max_slice_drop=0.05)
    uneven = evaluation(0.76, {"physics": (50, 0.90), "biology": (50, 0.62), "tiny": (5, 0.0)})
    decision = decide(uneven, PRODUCTION, rule)
    assert not decision.promote
    assert any("biology" in r and "drops" in r for r in decision.reasons)
    # the 5-answer slice fell to 0 but is too small to judge: it is reported, not a veto
    assert not any("tiny" in r and "drops" in r for r in decision.reasons)
    assert any("not judged" in r for r in decision.reasons)
    loose = PromotionRule(min_gain=0.01, max_slice_drop=0.10)
    assert decide(uneven, PRODUCTION, loose).promote


def test_no_candidate_is_never_promoted():
    assert not decide(None, PRODUCTION, PromotionRule()).promote


def test_bad_rules_are_refused():
    with pytest.raises(TrainingError):
        PromotionRule(max_slice_drop=2)


def test_round_state_is_forward_only_and_resumes(tmp_path):
    root = tmp_path / "rounds"
    state = open_round(root, {"x": 1})
    assert state.round_id == "round-0001" and state.next_stage == "ingest"
    state.finish("ingest", {"records_in_store": 3})
    with pytest.raises(TrainingError):
        state.finish("teacher", {})          # snapshot comes first
    # a new process finds the unfinished round and resumes at its next stage
    again = open_round(root, {"x": 2})
    assert again.round_id == "round-0001" and again.next_stage == "snapshot"
    assert again.output("ingest")["records_in_store"] == 3
    for stage in STAGES[1:]:
        again.finish(stage, {})
    assert again.done and again.finished_at
    # a finished round is history: the next call opens round 2
    assert open_round(root, {}).round_id == "round-0002"


def test_a_round_file_with_stages_out_of_order_is_refused(tmp_path):
    state = open_round(tmp_path, {})
    data = json.loads((state.directory / "round.json").read_text())
    data["stages"] = {"teacher": {}}
    (state.directory / "round.json").write_text(json.dumps(data))
    with pytest.raises(TrainingError, match="out of order"):
        RoundState.load(state.directory)
