"""Ask: FAQ retrieval (sentence encoder) -> rerank (cross-encoder) -> answer or the teacher."""
import re

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


def with_settings(box_dir, **settings):
    text = (box_dir / "box.toml").read_text()
    for key, value in settings.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (box_dir / "box.toml").write_text(text)
    return BoxService(load_config(box_dir))


def with_threshold(box_dir, value):
    """The matcher alone decides (the encoder's same-question and floor checks off: a tiny
    random encoder's cosines say nothing)."""
    return with_settings(box_dir, ask_answer_above=value, ask_same_question_above=0.0,
                         ask_min_similarity=0.0)


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


def test_the_faqs_own_question_is_answered_without_the_matcher(ask_box):
    # the matcher would answer nothing (threshold 1), but the FAQ question is the student's
    service = with_settings(ask_box, ask_answer_above=1.0, ask_same_question_above=0.99,
                            ask_min_similarity=0.0)
    faq = service.content.faq()
    record, result = service.ask(question=faq[5].question, class_id="4b", nickname="Mei")
    assert result.answered and result.matched_by == "question"
    assert result.faq_id == faq[5].id and result.answer == faq[5].answer
    assert result.confidence >= 0.99 and result.model_id == "embed"
    assert record.prediction == faq[5].id


def test_a_question_far_from_every_faq_question_goes_to_the_teacher(ask_box):
    # the matcher would answer anything (threshold 0), but nothing in the FAQ is this close
    service = with_settings(ask_box, ask_answer_above=0.0, ask_same_question_above=0.0,
                            ask_min_similarity=1.0)
    record, result = service.ask(question="Why do cats purr?", class_id="4b", nickname="Tom")
    assert not result.answered and result.confidence is None and result.matched_by is None
    assert record.id in {r.id for r in review_queue(service).questions}


def test_ask_settings_are_checked(box_dir):
    from appliance.errors import ConfigError

    for bad in ({"ask_same_question_above": 0.2, "ask_min_similarity": 0.6},
                {"ask_same_question_above": 0.9, "ask_min_similarity": 1.5}):
        key = next(k for k, v in bad.items() if v in (0.2, 1.5))
        with pytest.raises(ConfigError, match=key):
            with_settings(box_dir, **bad)

