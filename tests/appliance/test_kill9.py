"""kill -9 of the web server and the worker at 20 random points under concurrent writes:
every acknowledged interaction is there after restart, and every file stays readable."""
import http.client
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from appliance.config import load_config
from appliance.store import open_outbox
from appliance.syncbundle import find_sync_bundles, read_sync_bundle
from conftest import start_server
from helpers import process_tree, request
from test_worker import start_worker


def kill9(process):
    for pid in process_tree(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(10)


@pytest.mark.slow
def test_kill_9_at_random_points_loses_no_acknowledged_answer(box_dir, tmp_path):
    rng = random.Random(2026)
    acknowledged: list[str] = []
    unanswered: list[dict] = []  # cut off by a kill: the tablet re-sends them next round
    resent = 0
    stick = tmp_path / "stick"
    stick.mkdir()
    for round_number in range(20):
        server = start_server(box_dir, tmp_path / f"web-{round_number}.log")
        worker = start_worker(box_dir, tmp_path / f"worker-{round_number}.log")
        stop = threading.Event()

        resend, unanswered[:] = list(unanswered), []
        resent += len(resend)

        def tablet(n, server=server, stop=stop, resend=resend, round_number=round_number):
            queue = [p for i, p in enumerate(resend) if i % 8 == n]
            i = 0
            while not stop.is_set():
                i += 1
                payload = queue.pop() if queue else {
                    "exercise_id": "sci-states-of-matter-1", "answer": f"r{round_number} {n} {i}",
                    "class_id": "c", "nickname": f"t{n}",
                    "idempotency_key": f"{round_number}-{n}-{i}"}
                try:
                    status, body = request("POST", server.base_url + "/api/v1/answers", payload,
                                           timeout=5)
                except (OSError, http.client.HTTPException):
                    unanswered.append(payload)
                    unanswered.extend(queue)
                    return
                if status in (200, 201):
                    acknowledged.append(body["record_id"])

        # the worker exports to the stick while the tablets write
        exporter = subprocess.Popen([sys.executable, "-m", "appliance", "box", "sync", "usb",
                                     "--data-dir", str(box_dir), "--stick", str(stick),
                                     "--via-worker"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        tablets = [threading.Thread(target=tablet, args=(n,)) for n in range(8)]
        for t in tablets:
            t.start()
        time.sleep(rng.uniform(0.1, 1.5))
        kill9(server.process)
        kill9(worker)
        stop.set()
        for t in tablets:
            t.join(10)
        exporter.kill()
        exporter.wait(10)
        # every file is readable and every acknowledged answer is there
        config = load_config(box_dir)
        outbox = open_outbox(config)
        stored = {r.id for r in outbox.records()}
        missing = set(acknowledged) - stored
        assert not missing, f"round {round_number}: {len(missing)} acknowledged answers lost"
        outbox.acked_through()
        for bundle in find_sync_bundles(stick):
            read_sync_bundle(bundle)  # a published bundle is always whole
    assert len(acknowledged) > 100 and resent > 0
    keys = [r.idempotency_key for r in open_outbox(load_config(box_dir)).records()
            if r.idempotency_key]
    assert len(keys) == len(set(keys))  # answers re-sent after a crash were counted once
