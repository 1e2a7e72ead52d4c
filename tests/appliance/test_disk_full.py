"""Disk full on the box: writes fail clearly, grading goes on, nothing is corrupted."""

import pytest

from appliance.config import load_config
from appliance.provision import ProvisionRequest, provision
from appliance.store import open_outbox
from conftest import start_server
from helpers import request


@pytest.fixture
def small_outbox(box_dir, keypair):
    """The box's outbox on a 192 KiB filesystem; min_free_mb 0 so the disk really fills."""
    config = load_config(box_dir)
    (box_dir / "box.toml").write_text((box_dir / "box.toml").read_text().replace(
        "min_free_mb = 50", "min_free_mb = 0"))
    from helpers import small_tmpfs

    with small_tmpfs(config.outbox_dir, "192k"):
        yield load_config(box_dir)


def test_full_disk_refuses_writes_but_keeps_grading(small_outbox, tmp_path):
    config = small_outbox
    server = start_server(config.data_dir, tmp_path / "gunicorn.log")
    acknowledged, refused = [], None
    try:
        for i in range(400):
            status, body = request("POST", server.base_url + "/api/v1/answers", {
                "exercise_id": "sci-states-of-matter-1", "answer": f"steam {i} " + "x" * 200,
                "class_id": "c", "nickname": "n"})
            if status == 201:
                acknowledged.append(body["record_id"])
                continue
            refused = (status, body)
            break
        assert refused is not None, "the 192 KiB disk never filled"
        status, body = refused
        assert status == 503 and body["saved"] is False
        assert "could not be saved" in body["error"]["message"]
        assert body["grade"]["label"] in ("correct", "incorrect")  # inference keeps serving
        assert "space" in body["error"]["hint"] or "disk" in body["error"]["hint"]
        assert request("GET", server.base_url + "/readyz")[0] == 200
        status, body = request("GET", server.base_url + "/api/v1/exercises")
        assert status == 200
        # nothing corrupted: every acknowledged answer reads back, no temp files left
        stored = {r.id for r in open_outbox(config).records()}
        assert set(acknowledged) <= stored and len(acknowledged) > 10
        assert not [p for p in config.outbox_dir.iterdir() if p.name.endswith(".tmp")]
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_the_disk_guard_refuses_before_the_disk_is_full(box_dir, keypair):
    from appliance.errors import StoreError
    from appliance.records import InteractionRecord

    config = provision(ProvisionRequest(data_dir=box_dir, school_id="school-1",
                                        public_key=keypair[1]))
    outbox = open_outbox(config)
    outbox.min_free_bytes = 1 << 62
    with pytest.raises(StoreError, match="nearly full"):
        outbox.append(InteractionRecord.create(box_id=config.box_id, school_id="s", kind="grade"))
