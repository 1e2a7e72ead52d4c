"""Ask: FAQ retrieval (sentence encoder) -> rerank (cross-encoder) -> answer or the teacher."""
import pytest

from appliance.config import load_config
from appliance.models import install_bundle
from appliance.service import BoxService
from appliance.teaching import review_queue
from helpers import request


@pytest.fixture
def ask_box(box_dir, ask_bundles, keypair):
    config = load_config(box_dir)
    for bundle in ask_bundles:
        install_bundle(config.models_dir, bundle, keypair[1])
    return box_dir


def with_threshold(box_dir, value):
    text = (box_dir / "box.toml").read_text().replace("ask_answer_above = -1.0",
                                                      f"ask_answer_above = {value}")
    (box_dir / "box.toml").write_text(text)
    return BoxService(load_config(box_dir))


def test_a_confident_match_is_answered_from_the_faq(ask_box):
    service = with_threshold(ask_box, 0.0)
    faq = service.content.faq()
    record, result = service.ask(question=faq[0].question, class_id="4b", nickname="Mei")
    assert result.answered and result.faq_id in {e.id for e in faq}
    assert result.answer == {e.id: e.answer for e in faq}[result.faq_id]
    assert 0.0 <= result.confidence <= 1.0
    assert record.kind == "question" and record.prediction == result.faq_id
    assert record.texts == {"question": faq[0].question, "answer": result.answer}
    assert record.model_id == "match" and record.student.startswith("s-")
    # retrieval: the encoder puts the very same question first among the candidates
    embedder = service._optional_model("embed")
    entries, vectors = service.knowledge.entries_and_vectors(embedder)
    assert int((vectors @ embedder.embed([faq[3].question])[0]).argmax()) == 3


def test_an_unsure_question_goes_to_the_teacher(ask_box):
    service = with_threshold(ask_box, 1.0)
    record, result = service.ask(question="Why do cats purr?", class_id="4b", nickname="Tom")
    assert not result.answered and record.prediction is None
    assert "answer" not in record.texts
    queue = review_queue(service)
    assert record.id in {r.id for r in queue.questions}


def test_by_default_the_matcher_bundles_own_threshold_decides(ask_box, ask_bundles):
    from appliance.ask import ANSWER_ABOVE, answer_threshold
    from appliance.bundle import read_manifest_unverified

    carried = read_manifest_unverified(ask_bundles[0]).thresholds[ANSWER_ABOVE]
    assert 0.0 < carried < 1.0       # chosen at export on the FAQ pairs
    service = BoxService(load_config(ask_box))
    matcher = service._optional_model("match")
    assert answer_threshold(matcher, service.config.ask_answer_above) == carried
    faq = service.content.faq()
    _, result = service.ask(question=faq[0].question, class_id="4b", nickname="Mei")
    assert result.answered == (result.confidence >= carried)


def test_without_a_matcher_nothing_is_answered(box_dir):
    service = with_threshold(box_dir, 0.0)
    record, result = service.ask(question="Why is the sky blue?", class_id="4b", nickname="Ana")
    assert not result.answered and record.prediction is None


def test_ask_api(ask_box, tmp_path):
    from conftest import start_server

    with_threshold(ask_box, 0.0)
    server = start_server(ask_box, tmp_path / "gunicorn.log")
    try:
        status, body = request("POST", server.base_url + "/api/v1/ask", {
            "question": "Why is the sky blue?", "class_id": "4b", "nickname": "Ana"})
        assert status == 201 and body["saved"] and not body["forwarded"]
        assert body["answer"] and body["faq_id"] and 0 <= body["confidence"] <= 1
        status, body = request("POST", server.base_url + "/api/v1/ask",
                               {"question": "", "class_id": "4b", "nickname": "Ana"})
        assert status == 400 and body["error"]["field"] == "question"
    finally:
        server.stop()
