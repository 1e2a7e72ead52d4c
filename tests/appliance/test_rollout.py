"""Install then roll back a model while a class is using the box: no failed request."""
import threading

import pytest

from conftest import start_server
from helpers import request
from tests_cli import run_chalkbox


@pytest.mark.slow
def test_install_and_rollback_under_load_fail_no_request(box_dir, build_request_for, tmp_path):
    from export.build import build_bundle

    second = tmp_path / "v2"
    build_bundle(build_request_for(second, version="2.0.0", parent_version="1.0.0"))
    server = start_server(box_dir, tmp_path / "gunicorn.log")
    results, stop = [], threading.Event()

    def tablet(n):
        i = 0
        while not stop.is_set():
            i += 1
            status, body = request("POST", server.base_url + "/api/v1/answers", {
                "exercise_id": "sci-states-of-matter-1", "answer": f"steam {n} {i}",
                "class_id": "c", "nickname": f"t{n}"}, timeout=30)
            results.append((status, body.get("grade", {}).get("model_version")))

    tablets = [threading.Thread(target=tablet, args=(n,)) for n in range(6)]
    try:
        for t in tablets:
            t.start()
        install = run_chalkbox("box", "model", "install", "--data-dir", box_dir, second)
        assert install.returncode == 0, install.stderr
        while not any(version == "2.0.0" for _, version in results[-20:]):
            threading.Event().wait(0.1)
        rollback = run_chalkbox("box", "model", "rollback", "--data-dir", box_dir)
        assert rollback.returncode == 0, rollback.stderr
        seen_after = len(results)
        while not any(version == "1.0.0" for _, version in results[seen_after:]):
            threading.Event().wait(0.1)
    finally:
        stop.set()
        for t in tablets:
            t.join(30)
        server.stop()
    assert results and all(status == 201 for status, _ in results), \
        [r for r in results if r[0] != 201][:5]
    versions = [version for _, version in results]
    first_v2 = versions.index("2.0.0")
    assert "1.0.0" in versions[:first_v2] and "1.0.0" in versions[first_v2:]
