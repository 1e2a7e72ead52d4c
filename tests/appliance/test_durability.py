"""An answer acknowledged to a tablet survives kill -9 of the server."""
import os
import signal
import threading

from appliance.config import load_config
from appliance.store import Outbox
from conftest import start_server
from helpers import process_tree, request


def test_acknowledged_answers_survive_kill_9(box_dir, tmp_path):
    server = start_server(box_dir, tmp_path / "gunicorn.log")
    acknowledged, stop = [], threading.Event()

    def tablet(n):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, body = request("POST", server.base_url + "/api/v1/answers", {
                    "exercise_id": "sci-states-of-matter-1", "answer": f"steam {n}-{i}",
                    "class_id": "c", "nickname": f"t{n}"}, timeout=5)
            except OSError:
                return  # the server is gone
            if status == 201:
                acknowledged.append(body["record_id"])

    tablets = [threading.Thread(target=tablet, args=(n,)) for n in range(6)]
    for t in tablets:
        t.start()
    while len(acknowledged) < 40:
        threading.Event().wait(0.05)
    # kill -9 the master and its worker, mid-stream
    for pid in process_tree(server.process.pid):
        os.kill(pid, signal.SIGKILL)
    stop.set()
    for t in tablets:
        t.join(10)
    server.process.wait(10)
    stored = {r.id for r in Outbox(load_config(box_dir).outbox_dir).records()}  # all readable
    assert set(acknowledged) <= stored
    # and the box serves again from the same files
    server = start_server(box_dir, tmp_path / "gunicorn2.log")
    try:
        assert request("GET", server.base_url + "/readyz")[0] == 200
    finally:
        server.stop()
