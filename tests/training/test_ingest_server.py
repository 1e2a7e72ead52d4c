"""The centre's ingest server under a real gunicorn on loopback, spoken to as a box would."""
import hashlib
import http.client
import json

import sys

import pytest
from helpers import Server, free_port

from appliance.bundle import verify_bundle
from appliance.records import InteractionRecord
from appliance.sync import protocol
from appliance.syncbundle import build_manifest, encode_records
from training.centre import CentreConfig, gunicorn_argv, gunicorn_env
from training.fleet import Fleet
from training.publish import publish
from training.store import CentralStore


@pytest.fixture(scope="module")
def centre(tmp_path_factory, grade_bundle, keypair):
    root = tmp_path_factory.mktemp("centre")
    config = CentreConfig.from_dir(root)
    with Fleet(config.store_path) as fleet:
        tokens = {box: fleet.add_box(box, "school-1") for box in ("box-1", "box-2")}
        tokens["box-3"] = fleet.add_box("box-3", "school-3")
    publish(grade_bundle, config.published_root, keypair[1])
    port = free_port()
    server = Server(gunicorn_argv("127.0.0.1", port), gunicorn_env(root),
                    f"http://127.0.0.1:{port}", root / "gunicorn.log").wait_ready()
    server.port, server.config, server.tokens = port, config, tokens
    yield server
    server.stop()


def call(centre, method, path, body=None, box="box-1", token=None, headers=None):
    """(status, headers, raw body): http.client sends the path exactly as given."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if box is not None:
        sent[protocol.BOX_HEADER] = box
        sent["Authorization"] = f"Bearer {token or centre.tokens[box]}"
    conn = http.client.HTTPConnection("127.0.0.1", centre.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def call_json(centre, method, path, body=None, **kw):
    status, _, raw = call(centre, method, path, body, **kw)
    return status, json.loads(raw)


def chunk(n, box="box-1", school="school-1", outbox=(0, 9)):
    records = [InteractionRecord.create(box_id=box, school_id=school, kind="answer",
                                        texts={"answer": f"answer {i}"}, prediction="correct",
                                        confidence=0.9) for i in range(n)]
    ordered, data = encode_records(records)
    manifest = build_manifest(ordered, data, box_id=box, school_id=school, outbox_range=outbox)
    return manifest, data


def quarantined(centre, suffix):
    return sorted(p for p in centre.config.quarantine_dir.iterdir() if p.name.endswith(suffix))


def test_push_is_ingested_once_and_acknowledged_every_time(centre):
    manifest, data = chunk(5)
    body = protocol.push_payload(manifest, data)
    status, ack = call_json(centre, "POST", protocol.PUSH_PATH, body)
    assert status == 200
    assert ack == protocol.Ack.for_manifest(manifest, 5).to_dict()
    assert (ack["outbox_from"], ack["outbox_to"], ack["added"], ack["duplicates"]) == (0, 9, 5, 0)
    assert protocol.Ack.from_dict(ack).last_id == manifest["last_id"]
    status, again = call_json(centre, "POST", protocol.PUSH_PATH, body)
    assert status == 200 and (again["added"], again["duplicates"]) == (0, 5)
    with CentralStore(centre.config.store_path) as store:
        assert sorted(r.id for r in store.records("box-1")) == \
            [json.loads(line)["id"] for line in data.decode().splitlines()]
    with Fleet(centre.config.store_path) as fleet:
        [box] = [b for b in fleet.list_boxes() if b.box_id == "box-1"]
    assert box.records == 5 and box.last_seen is not None


def test_bad_or_missing_token_is_401_and_quarantined(centre):
    manifest, data = chunk(2)
    body = protocol.push_payload(manifest, data)
    status, headers, raw = call(centre, "POST", protocol.PUSH_PATH, body, token="nope")
    assert status == 401 and json.loads(raw)["error"]["field"] == "Authorization"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    [kept] = quarantined(centre, "-box-1-bad-token.json")
    assert kept.read_bytes() == body
    status, error = call_json(centre, "POST", protocol.PUSH_PATH, body, box=None)
    assert status == 401 and "Bearer" in error["error"]["message"]
    # no box named: logged, not kept (strangers must not be able to fill the quarantine)
    assert not quarantined(centre, "-unknown-unauthenticated.json")
    status, _ = call_json(centre, "POST", protocol.PUSH_PATH, body, box="box-404", token="x")
    assert status == 401 and not quarantined(centre, "-box-404-")
    # another box's valid token does not open this box
    status, _ = call_json(centre, "POST", protocol.PUSH_PATH, body, box="box-1",
                          token=centre.tokens["box-2"])
    assert status == 401
    with CentralStore(centre.config.store_path) as store:
        assert not {r.id for r in store.records()} & {manifest["first_id"]}


def test_tampered_records_are_400_naming_the_field_and_quarantined(centre):
    manifest, data = chunk(3)
    tampered = data.replace(b"answer 1", b"answer X")
    status, error = call_json(centre, "POST", protocol.PUSH_PATH,
                              protocol.push_payload(manifest, tampered))
    assert status == 400
    assert error["error"]["field"] == "files.records.jsonl.sha256"
    assert quarantined(centre, "-box-1-bad-checksum.json")
    # a record that is itself invalid, with a checksum that matches it
    lines = data.decode().splitlines()
    bad = json.loads(lines[1])
    bad["kind"] = "gossip"
    forged = ("\n".join([lines[0], json.dumps(bad), lines[2]]) + "\n").encode()
    manifest["files"]["records.jsonl"] = {"sha256": hashlib.sha256(forged).hexdigest(),
                                          "bytes": len(forged)}
    status, error = call_json(centre, "POST", protocol.PUSH_PATH,
                              protocol.push_payload(manifest, forged))
    assert status == 400 and error["error"]["field"] == "kind"
    assert quarantined(centre, "-box-1-bad-records.json")
    with CentralStore(centre.config.store_path) as store:
        assert manifest["first_id"] not in {r.id for r in store.records()}


def test_pushing_another_boxs_records_is_403(centre):
    manifest, data = chunk(2, box="box-1")
    status, error = call_json(centre, "POST", protocol.PUSH_PATH,
                              protocol.push_payload(manifest, data), box="box-2")
    assert status == 403 and error["error"]["field"] == "manifest.box_id"
    assert quarantined(centre, "-box-2-wrong-box.json")
    manifest, data = chunk(2, box="box-3", school="school-1")
    status, error = call_json(centre, "POST", protocol.PUSH_PATH,
                              protocol.push_payload(manifest, data), box="box-3")
    assert status == 403 and error["error"]["field"] == "manifest.school_id"


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    (b"[" * 100_000 + b"]" * 100_000, "body"),
    (b"[]", "manifest"),
    (b'{"manifest": {"format": "chalkbox-sync"}}', "format_version"),
])
def test_malformed_pushes_are_400_never_500(centre, body, field):
    status, error = call_json(centre, "POST", protocol.PUSH_PATH, body)
    assert status == 400 and error["error"]["field"] == field


def test_oversized_push_is_413_and_not_kept(centre):
    before = len(list(centre.config.quarantine_dir.iterdir()))
    status, error = call_json(centre, "POST", protocol.PUSH_PATH,
                              b"x" * (protocol.MAX_PUSH_BYTES + 1))
    assert status == 413 and error["error"]["field"] == "body"
    assert len(list(centre.config.quarantine_dir.iterdir())) == before
    assert "too-large" in centre.log()


def test_latest_model_and_its_files_round_trip_and_verify(centre, keypair, tmp_path):
    status, latest = call_json(centre, "GET", protocol.MODELS_LATEST_PATH + "?task=grade")
    assert status == 200 and latest["name"] == "grade-tiny-1.0.0"
    assert latest["manifest"]["version"] == "1.0.0"
    assert set(latest["files"]) == {"manifest.json", "manifest.sig", "model.onnx",
                                    "tokenizer.json"}
    out = tmp_path / latest["name"]
    out.mkdir()
    for name in latest["files"]:
        path = protocol.MODEL_FILE_PATH.format(name=latest["name"], file=name)
        status, _, raw = call(centre, "GET", path)
        assert status == 200, name
        (out / name).write_bytes(raw)
    assert verify_bundle(out, keypair[1]).version == "1.0.0"
    assert call_json(centre, "GET", protocol.MODELS_LATEST_PATH + "?task=match")[0] == 404
    assert call_json(centre, "GET", protocol.MODELS_LATEST_PATH + "?task=x")[0] == 400
    assert call_json(centre, "GET", protocol.MODELS_LATEST_PATH + "?task=grade",
                     token="nope")[0] == 401


@pytest.mark.parametrize("name, file", [
    ("grade-tiny-1.0.0", "../../../chalkbox.db"),
    ("grade-tiny-1.0.0", "..%2F..%2F..%2Fchalkbox.db"),
    ("..%2F..%2F..", "chalkbox.db"),
    ("grade-tiny-1.0.0", "LATEST"),
    ("grade-tiny-1.0.0", ".."),
    ("..", "LATEST"),
    ("grade", "LATEST"),
    ("grade-tiny-1.0.0", "%2Fetc%2Fpasswd"),
])
def test_path_traversal_is_refused(centre, name, file):
    status, _, raw = call(centre, "GET", f"/api/v1/models/{name}/{file}")
    assert status in (400, 404), raw[:200]
    assert b"SQLite" not in raw and b"root:" not in raw


def test_files_are_served_only_to_boxes(centre):
    path = protocol.MODEL_FILE_PATH.format(name="grade-tiny-1.0.0", file="manifest.json")
    assert call(centre, "GET", path, box=None)[0] == 401


def test_report_is_recorded(centre):
    body = json.dumps({"models": {"grade": "1.0.0"}, "health": {"disk_free_mb": 512}}).encode()
    status, answer = call_json(centre, "POST", protocol.REPORT_PATH, body, box="box-2")
    assert status == 200 and answer["box_id"] == "box-2"
    with Fleet(centre.config.store_path) as fleet:
        [box] = [b for b in fleet.list_boxes() if b.box_id == "box-2"]
    assert box.models == {"grade": "1.0.0"} and box.health == {"disk_free_mb": 512}
    bad = json.dumps({"models": {"grade": 1}}).encode()
    status, error = call_json(centre, "POST", protocol.REPORT_PATH, bad, box="box-2")
    assert status == 400 and error["error"]["field"] == "models"
    status, error = call_json(centre, "POST", protocol.REPORT_PATH, b"{", box="box-2")
    assert status == 400 and error["error"]["field"] == "body"


def test_nothing_above_raised_an_unexpected_error(centre):
    assert "Traceback" not in centre.log()
    assert "unexpected error" not in centre.log()


def test_the_serve_command_starts_a_ready_centre(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "appliance", "train", "serve", "--centre-dir",
            str(tmp_path / "c"), "--port", str(port)]
    server = Server(argv, None, f"http://127.0.0.1:{port}", tmp_path / "serve.log")
    server.port = port
    try:
        server.wait_ready()
        assert call_json(server, "GET", "/readyz", box=None)[1]["status"] == "ready"
        assert (tmp_path / "c" / "chalkbox.db").is_file()
        assert (tmp_path / "c" / "quarantine").is_dir()
    finally:
        server.stop()
    assert server.process.returncode is not None
