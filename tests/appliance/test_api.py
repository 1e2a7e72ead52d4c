"""The JSON API against a real gunicorn on loopback."""
import pytest

from appliance.config import load_config
from appliance.store import Outbox
from helpers import request

ANSWER = {"exercise_id": "sci-states-of-matter-1", "answer": "it boils into steam",
          "class_id": "c-7", "nickname": "Ana"}


def test_exercises_are_listed(live_box):
    status, body = request("GET", live_box.base_url + "/api/v1/exercises")
    assert status == 200
    assert len(body["exercises"]) >= 30
    assert {"id", "subject", "grade_band", "question"} <= set(body["exercises"][0])


def test_answer_is_graded_and_durably_recorded(live_box):
    status, body = request("POST", live_box.base_url + "/api/v1/answers", ANSWER)
    assert status == 201, body
    grade = body["grade"]
    assert grade["label"] in ("correct", "incorrect")
    assert 0.5 <= grade["confidence"] <= 1.0
    assert grade["model_version"] == "1.0.0"
    config = load_config(live_box.data_dir)
    stored = {r.id: r for r in Outbox(config.outbox_dir).records()}
    record = stored[body["record_id"]]
    assert record.kind == "answer" and record.prediction == grade["label"]
    assert record.model_version == "1.0.0" and record.subject == "science"
    assert record.texts["answer"] == ANSWER["answer"]
    assert record.student.startswith("s-") and "Ana" not in record.student


def test_direct_grade(live_box):
    status, body = request("POST", live_box.base_url + "/api/v1/grade", {
        "question": "What do plants need?", "reference": "Light and water.", "answer": "water"})
    assert status == 200
    assert body["grade"]["label"] in ("correct", "incorrect") and body["saved"]


def test_model_and_ops_endpoints(live_box):
    assert request("GET", live_box.base_url + "/api/v1/model")[1]["version"] == "1.0.0"
    assert request("GET", live_box.base_url + "/healthz") == (200, {"status": "ok"})
    status, body = request("GET", live_box.base_url + "/readyz")
    assert status == 200 and body["status"] == "ready"


@pytest.mark.parametrize("path, payload, status, field", [
    ("/api/v1/answers", {**ANSWER, "answer": ""}, 400, "answer"),
    ("/api/v1/answers", {k: v for k, v in ANSWER.items() if k != "nickname"}, 400, "nickname"),
    ("/api/v1/answers", {**ANSWER, "answer": 42}, 400, "answer"),
    ("/api/v1/answers", {**ANSWER, "answer": "x" * 2001}, 400, "answer"),
    ("/api/v1/answers", {**ANSWER, "extra": 1}, 400, "extra"),
    ("/api/v1/answers", [1, 2], 400, "body"),
    ("/api/v1/answers", {**ANSWER, "exercise_id": "nope"}, 404, None),
    ("/api/v1/grade", {"question": "Q", "reference": "R"}, 400, "answer"),
])
def test_bad_input_is_a_4xx_naming_the_field(live_box, path, payload, status, field):
    got, body = request("POST", live_box.base_url + path, payload)
    assert got == status, body
    assert body["error"]["status"] == status
    if field:
        assert body["error"]["field"] == field


def test_malformed_json_oversize_and_wrong_method(live_box):
    status, body = request("POST", live_box.base_url + "/api/v1/answers", raw=b"{not json")
    assert status == 400 and body["error"]["field"] == "body"
    status, body = request("POST", live_box.base_url + "/api/v1/answers",
                           raw=b'{"answer": "' + b"x" * 70000 + b'"}')
    assert status == 413 and body["error"]["field"] == "body"
    status, body = request("DELETE", live_box.base_url + "/api/v1/answers")
    assert status == 405 and "error" in body
    status, body = request("GET", live_box.base_url + "/no/such/page")
    assert status == 404 and "error" in body


@pytest.mark.parametrize("raw", [
    b"[" * 20000, b'{"exercise_id": ' * 5000, b"\xff\xfe", b"", b"null", b'"a string"',
    b'{"exercise_id": "sci-states-of-matter-1", "answer": "\\ud800", "class_id": "c", "nickname": "n"}',
])
def test_hostile_bodies_get_a_4xx_never_a_server_error(live_box, raw):
    status, body = request("POST", live_box.base_url + "/api/v1/answers", raw=raw)
    assert 400 <= status < 500, body
    assert "Traceback" not in live_box.log()


def test_a_resent_answer_counts_once(live_box):
    payload = {**ANSWER, "answer": "Water boils to a gas", "idempotency_key": "k-123456"}
    first = request("POST", live_box.base_url + "/api/v1/answers", payload)
    again = request("POST", live_box.base_url + "/api/v1/answers", payload)
    assert first[0] == 201 and again[0] == 200 and again[1]["resent"] is True
    assert again[1]["record_id"] == first[1]["record_id"]
    assert again[1]["grade"]["label"] == first[1]["grade"]["label"]
    stored = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
              if r.idempotency_key == "k-123456"]
    assert len(stored) == 1
    status, body = request("POST", live_box.base_url + "/api/v1/answers",
                           {**payload, "answer": "something else"})
    assert status == 400 and body["error"]["field"] == "idempotency_key"


def test_the_server_picks_up_an_installed_model_and_a_rollback(live_box, build_request_for,
                                                               tmp_path, keypair):
    from export.build import build_bundle
    from tests_cli import run_chalkbox

    second = tmp_path / "v2"
    build_bundle(build_request_for(second, version="2.0.0"))
    assert run_chalkbox("box", "model", "install", "--data-dir", live_box.data_dir,
                        second).returncode == 0
    status, body = request("POST", live_box.base_url + "/api/v1/answers", ANSWER)
    assert status == 201 and body["grade"]["model_version"] == "2.0.0"
    assert run_chalkbox("box", "model", "rollback", "--data-dir",
                        live_box.data_dir).returncode == 0
    status, body = request("POST", live_box.base_url + "/api/v1/answers", ANSWER)
    assert status == 201 and body["grade"]["model_version"] == "1.0.0"


def test_metrics_cover_requests_batches_queue_sync_and_model(live_box):
    request("POST", live_box.base_url + "/api/v1/answers", ANSWER)
    import urllib.request

    with urllib.request.urlopen(live_box.base_url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    assert 'chalkbox_http_requests_total{endpoint="/api/v1/answers",method="POST",status="201"}' \
        in text
    assert 'chalkbox_http_request_seconds_bucket{endpoint="/api/v1/answers"' in text
    assert "chalkbox_inference_batch_size_count" in text
    assert "chalkbox_worker_queue_depth" in text
    unsynced = next(line for line in text.splitlines()
                    if line.startswith("chalkbox_unsynced_records "))
    assert float(unsynced.split()[1]) >= 1
    assert 'chalkbox_model_info{model_id="grade-tiny",' in text and 'version="1.0.0"' in text
    # paths that match no route share one label: a scanner cannot blow up the series
    request("GET", live_box.base_url + "/no/such/thing/1")
    request("GET", live_box.base_url + "/no/such/thing/2")
    with urllib.request.urlopen(live_box.base_url + "/metrics", timeout=10) as resp:
        assert "/no/such" not in resp.read().decode()


def test_metrics_refuse_the_network_without_the_token(box_dir):
    from appliance import create_app

    (box_dir / "box.toml").write_text((box_dir / "box.toml").read_text()
                                      .replace('metrics_token = ""', 'metrics_token = "s3cret"'))
    client = create_app(data_dir=box_dir).test_client()
    tablet = {"REMOTE_ADDR": "10.0.0.23"}
    assert client.get("/metrics", environ_base=tablet).status_code == 401
    assert client.get("/metrics", environ_base=tablet,
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", environ_base=tablet,
                      headers={"Authorization": "Bearer s3cret"}).status_code == 200
    local = {"REMOTE_ADDR": "127.0.0.1"}
    assert client.get("/metrics", environ_base=local).status_code == 200
    assert client.get("/metrics", environ_base=local,
                      headers={"X-Forwarded-For": "10.0.0.23"}).status_code == 401


def test_thumbs_on_ones_own_answer_are_stored_and_others_refused(live_box):
    status, answered = request("POST", live_box.base_url + "/api/v1/answers",
                               {**ANSWER, "answer": "it evaporates into steam"})
    assert status == 201
    thumbs = {"record_id": answered["record_id"], "feedback": "down", "class_id": "c-7",
              "nickname": "Ana"}
    status, body = request("POST", live_box.base_url + "/api/v1/feedback", thumbs)
    assert status == 201, body
    stored = {r.id: r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()}
    record = stored[body["record_id"]]
    assert record.kind == "feedback" and record.feedback == "down"
    assert record.ref_id == answered["record_id"] and record.prediction == stored[
        answered["record_id"]].prediction
    # someone else cannot rate Ana's answer, and a made-up record is not found
    assert request("POST", live_box.base_url + "/api/v1/feedback",
                   {**thumbs, "nickname": "Bob"})[0] == 404
    assert request("POST", live_box.base_url + "/api/v1/feedback",
                   {**thumbs, "record_id": "nope"})[0] == 404
    assert request("POST", live_box.base_url + "/api/v1/feedback",
                   {**thumbs, "feedback": "meh"})[1]["error"]["field"] == "feedback"
