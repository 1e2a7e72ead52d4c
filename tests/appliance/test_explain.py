"""Hints, suggestions and word attributions over the real ONNX model."""
import pytest

from appliance.inference.explain import answer_spans, reference_clauses
from helpers import request


def test_reference_is_split_into_meaningful_clauses():
    ref = ("It boils and changes from a liquid into a gas, which is called water vapour. "
           "This happens at 100 degrees.")
    assert reference_clauses(ref) == ["It boils and changes from a liquid into a gas",
                                      "which is called water vapour", "This happens at 100 degrees"]
    assert reference_clauses("Photosynthesis.") == ["Photosynthesis."]


@pytest.mark.parametrize("n, spans", [(1, [(0, 1)]), (6, [(i, i + 1) for i in range(6)]),
                                      (13, [(0, 3), (3, 6), (6, 9), (9, 12), (12, 13)])])
def test_answer_spans_cover_every_word_once(n, spans):
    assert answer_spans(" ".join(["w"] * n)) == spans


def test_explain_endpoint(live_box):
    status, body = request("POST", live_box.base_url + "/api/v1/explain", {
        "exercise_id": "sci-states-of-matter-1", "answer": "it freezes into ice cubes"})
    assert status == 200, body
    assert body["hint"] and body["hint"] in (
        "It boils and changes from a liquid into a gas called water vapour, or steam")
    words = [w["text"] for w in body["words"]]
    assert " ".join(words) == "it freezes into ice cubes"
    assert all(isinstance(w["weight"], float) for w in body["words"])
    if body["suggestion"] is not None:
        assert body["suggestion"].startswith("Think about this part:")
    status, body = request("POST", live_box.base_url + "/api/v1/explain",
                           {"exercise_id": "nope", "answer": "x"})
    assert status == 404
