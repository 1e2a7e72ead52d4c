"""Backup to a stick and restore from it: verified copies, refusals that change nothing."""
import json
import os
import threading
from pathlib import Path

import pytest

from appliance.backup import MANIFEST, make_backup, verify_backup
from appliance.config import load_config
from appliance.fsutil import sha256_file
from appliance.records import InteractionRecord
from appliance.store import open_outbox
from appliance.store.roster import Roster
from conftest import start_server
from helpers import request
from tests_cli import run_chalkbox

TRANSIENT = ("worker/huey.db", "worker/huey.db-wal", "worker/heartbeat", "outbox/.lock")


def tree(root: Path, skip_transient=True) -> dict[str, str]:
    """{relative path: sha256} of every regular file; symlinks as 'link:target'."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if skip_transient and (rel in TRANSIENT or rel.endswith(".tmp")):
            continue
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = sha256_file(path)
    return out


def fill(box_dir, n=30):
    config = load_config(box_dir)
    outbox = open_outbox(config)
    ids = [outbox.append(InteractionRecord.create(box_id=config.box_id, school_id=config.school_id,
                                                  kind="grade", texts={"answer": f"a{i}"})).id
           for i in range(n)]
    Roster(config.roster_path).remember("s-" + "a" * 24, "class-1", "Nia")
    config.worker_dir.mkdir(exist_ok=True)
    for name in ("huey.db", "heartbeat"):  # process-local: never backed up
        (config.worker_dir / name).write_text("x")
    (config.outbox_dir / ".segment-000001.json.123.tmp").write_text("half a write")
    return ids


def backup_of(box_dir, stick):
    stick.mkdir(exist_ok=True)
    result = run_chalkbox("box", "backup", "--data-dir", box_dir, "--to", stick)
    assert result.returncode == 0, result.stderr
    assert "backup verified" in result.stdout
    [backup] = [p for p in stick.iterdir() if p.name.startswith("chalkbox-backup-")]
    return backup


def test_backup_then_restore_gives_the_same_box(box_dir, tmp_path):
    ids = fill(box_dir)
    backup = backup_of(box_dir, tmp_path / "stick")
    assert backup.name.startswith(f"chalkbox-backup-{load_config(box_dir).box_id}-")
    assert os.listdir(tmp_path / "stick") == [backup.name]  # no staging left behind
    manifest = json.loads((backup / MANIFEST).read_text())
    original = tree(box_dir)
    assert set(manifest["files"]) | {f"{k}" for k in manifest["links"]} == set(original)
    assert all(manifest["files"][rel]["sha256"] == sha for rel, sha in original.items()
               if not sha.startswith("link:"))

    restored = tmp_path / "restored"
    result = run_chalkbox("box", "restore", "--from", backup, "--data-dir", restored)
    assert result.returncode == 0, result.stderr
    assert tree(restored, skip_transient=False) == original
    assert (restored / "secrets" / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert (restored / "secrets").stat().st_mode & 0o777 == 0o700
    config = load_config(restored)
    assert [r.id for r in open_outbox(config).records()] == ids

    server = start_server(restored, tmp_path / "gunicorn.log")
    try:
        status, body = request("POST", server.base_url + "/api/v1/answers", {
            "exercise_id": "sci-states-of-matter-1", "answer": "it turns to steam",
            "class_id": "c", "nickname": "n"})
        assert status == 201, body
    finally:
        server.stop()
    assert [r.id for r in open_outbox(config).records()][:-1] == ids


def test_restore_over_a_box_needs_force_and_keeps_the_old_one(box_dir, tmp_path):
    fill(box_dir, 3)
    backup = backup_of(box_dir, tmp_path / "stick")
    before = tree(box_dir, skip_transient=False)
    refused = run_chalkbox("box", "restore", "--from", backup, "--data-dir", box_dir)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert tree(box_dir, skip_transient=False) == before

    result = run_chalkbox("box", "restore", "--from", backup, "--data-dir", box_dir, "--force")
    assert result.returncode == 0, result.stderr
    [aside] = box_dir.parent.glob("box.before-restore-*")
    assert tree(aside, skip_transient=False) == before
    assert not list(box_dir.parent.glob(".box*"))


def _modify(backup):
    path = backup / "outbox" / "segment-000001.json"
    path.write_bytes(path.read_bytes().replace(b'"a1"', b'"b1"'))
    return "outbox/segment-000001.json"


def _delete(backup):
    (backup / "content.json").unlink()
    return "content.json"


def _escape(backup):
    manifest = json.loads((backup / MANIFEST).read_text())
    manifest["files"]["../escaped"] = manifest["files"].pop("content.json")
    (backup / MANIFEST).write_text(json.dumps(manifest))
    return "../escaped"


@pytest.mark.parametrize("tamper", [_modify, _delete, _escape])
def test_a_tampered_backup_is_refused_and_the_box_is_unchanged(box_dir, tmp_path, tamper):
    fill(box_dir, 5)
    backup = backup_of(box_dir, tmp_path / "stick")
    named = tamper(backup)
    before = tree(box_dir, skip_transient=False)
    result = run_chalkbox("box", "restore", "--from", backup, "--data-dir", box_dir, "--force")
    assert result.returncode == 1
    assert named in result.stderr and "Traceback" not in result.stderr
    assert tree(box_dir, skip_transient=False) == before
    assert sorted(p.name for p in box_dir.parent.iterdir() if p.name != "stick") == ["box"]


@pytest.fixture
def small_stick(tmp_path):
    from helpers import small_tmpfs

    with small_tmpfs(tmp_path / "small-stick", "64k") as stick:
        yield stick


def test_a_stick_without_space_is_refused_and_left_empty(box_dir, small_stick):
    fill(box_dir, 5)
    before = tree(box_dir, skip_transient=False)
    result = run_chalkbox("box", "backup", "--data-dir", box_dir, "--to", small_stick)
    assert result.returncode == 1
    assert "not enough space" in result.stderr and "(hint: " in result.stderr
    assert os.listdir(small_stick) == []
    assert tree(box_dir, skip_transient=False) == before


def test_a_backup_taken_while_answers_arrive_is_a_consistent_prefix(box_dir, tmp_path):
    ids = fill(box_dir, 5)
    config = load_config(box_dir)
    outbox = open_outbox(config)
    stop = threading.Event()

    def write():
        while not stop.is_set():
            ids.append(outbox.append(InteractionRecord.create(
                box_id=config.box_id, school_id=config.school_id, kind="grade")).id)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        (tmp_path / "stick").mkdir()
        result = make_backup(config, tmp_path / "stick")
    finally:
        stop.set()
        writer.join()
    verify_backup(result.path)
    backed_up = [r.id for r in open_outbox(load_config(result.path)).records()]
    assert len(backed_up) >= 5 and backed_up == ids[:len(backed_up)]
