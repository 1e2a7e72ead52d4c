"""The real huey consumer (`chalkbox box worker`) doing a teacher's USB sync."""
import json
import subprocess
import sys
import time

from appliance.config import load_config
from appliance.records import InteractionRecord
from appliance.store import open_outbox
from appliance.syncbundle import find_sync_bundles, read_sync_bundle
from tests_cli import run_chalkbox


def start_worker(data_dir, log_path):
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, "-m", "appliance", "box", "worker", "--data-dir",
                             str(data_dir)], stdout=log, stderr=subprocess.STDOUT)


def test_worker_exports_to_a_stick_and_beats(box_dir, tmp_path):
    config = load_config(box_dir)
    outbox = open_outbox(config)
    ids = {outbox.append(InteractionRecord.create(box_id=config.box_id,
                                                  school_id=config.school_id, kind="grade",
                                                  texts={"answer": str(i)})).id
           for i in range(20)}
    worker = start_worker(box_dir, tmp_path / "worker.log")
    try:
        stick = tmp_path / "stick"
        stick.mkdir()
        result = run_chalkbox("box", "sync", "usb", "--data-dir", box_dir, "--stick", stick,
                              "--via-worker", timeout=120)
        assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
        assert json.loads(result.stdout)["exported"] == 20
        [bundle] = find_sync_bundles(stick)
        assert {r.id for r in read_sync_bundle(bundle)[1]} == ids
        deadline = time.monotonic() + 20
        while not (config.worker_dir / "heartbeat").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (config.worker_dir / "heartbeat").exists()
    finally:
        worker.send_signal(2)  # SIGINT: huey's graceful stop (what systemd sends)
        assert worker.wait(30) == 0
