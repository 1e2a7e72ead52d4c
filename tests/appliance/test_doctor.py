"""`chalkbox box doctor` and `diagnostics` on real boxes: healthy, then one planted fault each.

Fault tests run without a server or worker, so those two checks fail as well; each test
asserts that its fault, and nothing else, is what fails besides them.
"""
import base64
import json
import os
import re
import shutil
import time

import pytest

from appliance.config import load_config
from appliance.doctor import FAIL, OK, WARN, run_check, run_checks
from appliance.models import current_bundle_dir
from appliance.privacy import load_secret, pseudonym
from appliance.records import InteractionRecord
from appliance.store import open_outbox
from appliance.store.roster import Roster
from conftest import start_server
from helpers import free_port
from test_worker import start_worker
from tests_cli import run_chalkbox

NAMES = ["disk", "permissions", "store", "model", "worker", "queue", "unsynced", "sync", "clock",
         "port"]
ALWAYS_DOWN = {"worker", "port"}  # no worker or server runs in the fault tests


def checks_of(box_dir, **kwargs):
    return {c.name: c for c in run_checks(load_config(box_dir), **kwargs)}


def assert_fails(checks, *names):
    failed = {name for name, c in checks.items() if c.status == FAIL}
    assert failed == set(names) | ALWAYS_DOWN, {n: c.message for n, c in checks.items()}
    for name in names:
        assert checks[name].hint, checks[name]


def add_record(box_dir, **fields):
    config = load_config(box_dir)
    return open_outbox(config).append(InteractionRecord.create(
        box_id=config.box_id, school_id=config.school_id, kind="grade", **fields))


def test_a_healthy_box_passes_every_check(box_dir, tmp_path):
    config = load_config(box_dir)
    add_record(box_dir, texts={"answer": "ice melts"})
    worker = start_worker(box_dir, tmp_path / "worker.log")
    server = start_server(box_dir, tmp_path / "gunicorn.log")
    try:
        deadline = time.monotonic() + 30
        while not (config.worker_dir / "heartbeat").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        plain = run_chalkbox("box", "doctor", "--data-dir", box_dir, timeout=120)
        assert plain.returncode == 0, plain.stdout + plain.stderr
        lines = plain.stdout.splitlines()
        assert [line.split()[:2] for line in lines[:-1]] == [[OK, name] for name in NAMES]
        assert lines[-1].startswith("overall: ok")
        as_json = run_chalkbox("box", "doctor", "--data-dir", box_dir, "--json", timeout=120)
        assert as_json.returncode == 0, as_json.stderr
        report = json.loads(as_json.stdout)
        assert report["status"] == OK
        assert [(c["name"], c["status"]) for c in report["checks"]] == [(n, OK) for n in NAMES]
    finally:
        server.stop()
        worker.send_signal(2)
        worker.wait(30)


def test_full_disk(box_dir):
    if shutil.disk_usage(box_dir).free >= 1_000_000 * 2**20:
        pytest.skip("more than a terabyte free: min_free_mb cannot go above it")
    toml = box_dir / "box.toml"
    toml.write_text(re.sub(r"min_free_mb = \d+", "min_free_mb = 1000000", toml.read_text()))
    checks = checks_of(box_dir)
    assert_fails(checks, "disk")
    assert "MB free" in checks["disk"].message


def test_bad_model_signature(box_dir):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    bundle = current_bundle_dir(load_config(box_dir).models_dir)
    other_key = Ed25519PrivateKey.generate()  # signs the very same manifest: wrong key
    (bundle / "manifest.sig").write_bytes(
        base64.b64encode(other_key.sign((bundle / "manifest.json").read_bytes())))
    checks = checks_of(box_dir)
    assert_fails(checks, "model")
    assert "signature" in checks["model"].message


@pytest.mark.parametrize("heartbeat", [None, "old"])
def test_stopped_worker(box_dir, heartbeat):
    config = load_config(box_dir)
    if heartbeat:
        config.worker_dir.mkdir(exist_ok=True)
        (config.worker_dir / "heartbeat").write_text(f"{time.time() - 600}\n")
    checks = checks_of(box_dir)
    assert_fails(checks, "worker")
    assert ("10.0 minutes" if heartbeat else "no worker heartbeat") in checks["worker"].message


@pytest.mark.parametrize("damaged", ["outbox/segment-000001.json", "outbox/acked.json",
                                     "content.json", "roster.json"])
def test_corrupted_store(box_dir, damaged):
    add_record(box_dir, texts={"answer": "steam"})
    (box_dir / damaged).write_bytes(b"\x00garbage{{")
    checks = checks_of(box_dir)
    # the unsynced count reads the same damaged outbox and says so too
    also = {"unsynced"} if damaged.startswith("outbox/") else set()
    assert_fails(checks, "store", *also)
    assert damaged.split("/")[-1] in checks["store"].message


def test_a_damaged_record_is_named_by_field_only(box_dir):
    secret_text = "a-students-private-answer-1234"
    (box_dir / "outbox" / "segment-000001.json").write_text(json.dumps(
        {"records": {"1": {"id": secret_text, "kind": "grade"}}}))
    checks = checks_of(box_dir)
    assert "segment-000001.json record 1 has a bad field 'id'" in checks["store"].message
    assert secret_text not in json.dumps([c.to_dict() for c in checks.values()])


def test_unreachable_port(box_dir):
    checks = checks_of(box_dir, url=f"http://127.0.0.1:{free_port()}")
    assert_fails(checks, "port")
    assert "nothing answers" in checks["port"].message


def test_clock_behind_the_newest_record_and_old_unsynced_records(box_dir):
    add_record(box_dir, created_at="2025-01-01T00:00:00.000Z")
    checks = checks_of(box_dir)
    assert checks["unsynced"].status == WARN and "days old" in checks["unsynced"].message
    add_record(box_dir, created_at="2099-01-01T00:00:00.000Z")
    checks = checks_of(box_dir)
    assert_fails(checks, "clock")
    assert "behind the newest record" in checks["clock"].message


def test_a_check_that_crashes_is_a_fail_not_a_traceback():
    def broken():
        return {}["missing"]
    check = run_check("broken", broken)
    assert check.status == FAIL and "KeyError" in check.message and check.hint


def test_the_cli_exits_1_and_names_the_fault(box_dir):
    (box_dir / "outbox" / "segment-000001.json").write_text("garbage")
    result = run_chalkbox("box", "doctor", "--data-dir", box_dir, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [store] = [line for line in result.stdout.splitlines() if line.split()[1] == "store"]
    assert store.startswith(FAIL) and "segment-000001.json" in store and "(hint: " in store


def test_json_for_a_dir_that_is_no_box(tmp_path):
    result = run_chalkbox("box", "doctor", "--data-dir", tmp_path / "nobox", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == FAIL and report["checks"][0]["name"] == "config"


def test_diagnostics_carry_no_student_text_and_no_secrets(box_dir, tmp_path):
    config = load_config(box_dir)
    secret = load_secret(config.secrets_dir)
    answer, nickname = "zq-photosynthesis-needs-sunlight-4711", "Zorblaxia"
    student = pseudonym(secret, "class-7b", nickname)
    Roster(config.roster_path).remember(student, "class-7b", nickname)
    token = "tok-" + "9f8e7d6c5b4a" * 4
    config.token_path.write_text(token + "\n")
    os.chmod(config.token_path, 0o600)
    add_record(box_dir, class_id="class-7b", student=student,
               texts={"answer": f"{answer}, said {nickname}"})
    (config.outbox_dir / "segment-000002.json").write_text(json.dumps(  # damaged, with text
        {"records": {"1": {"id": answer, "kind": nickname, "texts": {"answer": answer}}}}))
    stick = tmp_path / "stick"
    stick.mkdir()

    result = run_chalkbox("box", "diagnostics", "--data-dir", box_dir, "--to", stick,
                          "--url", f"http://127.0.0.1:{free_port()}", timeout=120)
    assert result.returncode == 0, result.stderr
    [bundle] = stick.iterdir()
    assert bundle.name.startswith(f"chalkbox-diagnostics-{config.box_id}-")
    assert sorted(p.name for p in bundle.iterdir()) == [
        "config.json", "doctor.json", "models.json", "outbox.json", "sync.json", "versions.json"]
    texts = {p.name: p.read_text() for p in bundle.iterdir()}
    for name, text in texts.items():
        json.loads(text)
        for needle in (answer, nickname, nickname.lower(), student, token, secret.hex()):
            assert needle not in text, (needle, name)
    doctor = json.loads(texts["doctor.json"])
    store = next(c for c in doctor["checks"] if c["name"] == "store")
    assert store["status"] == FAIL and "segment-000002.json" in store["message"]
    outbox = json.loads(texts["outbox.json"])
    assert [s.get("kinds") for s in outbox["segments"]] == [{"grade": 1}, {"other": 1}]
    assert json.loads(texts["config.json"])["token_present"] is True
    assert "onnxruntime_providers" in json.loads(texts["versions.json"])
    assert json.loads(texts["models.json"])["installed"][0]["role"] == "current"
