import json

import pytest

from appliance.errors import FormatError
from appliance.records import InteractionRecord
from appliance.syncbundle import (RECORDS_FILE, find_sync_bundles, read_sync_bundle,
                                  write_sync_bundle)


def records(n, box="box-1"):
    return [InteractionRecord.create(box_id=box, school_id="s", kind="grade",
                                     texts={"answer": f"answer {i}"}) for i in range(n)]


def test_write_then_read_gives_the_same_records(tmp_path):
    written = records(25)
    path = write_sync_bundle(reversed(written), tmp_path, box_id="box-1", school_id="s")
    manifest, read = read_sync_bundle(path)
    assert read == written  # sorted by id, whatever the input order
    assert manifest["count"] == 25
    assert manifest["first_id"] == written[0].id and manifest["last_id"] == written[-1].id
    assert not list(tmp_path.glob(".staging-*"))


def test_nothing_to_write_writes_nothing(tmp_path):
    assert write_sync_bundle([], tmp_path, box_id="b", school_id="s") is None
    assert list(tmp_path.iterdir()) == []


def test_tampered_records_are_refused(tmp_path):
    path = write_sync_bundle(records(3), tmp_path, box_id="box-1", school_id="s")
    data = (path / RECORDS_FILE).read_text().replace("answer 1", "answer 9")
    (path / RECORDS_FILE).write_text(data)
    with pytest.raises(FormatError) as info:
        read_sync_bundle(path)
    assert info.value.field == f"files.{RECORDS_FILE}.sha256"


def test_truncated_bundle_is_refused(tmp_path):
    path = write_sync_bundle(records(10), tmp_path, box_id="box-1", school_id="s")
    raw = (path / RECORDS_FILE).read_bytes()
    (path / RECORDS_FILE).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError):
        read_sync_bundle(path)


def test_manifest_lying_about_count_is_refused(tmp_path):
    path = write_sync_bundle(records(4), tmp_path, box_id="box-1", school_id="s")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["count"] = 5
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError) as info:
        read_sync_bundle(path)
    assert info.value.field == "count"


def test_staging_directories_are_not_bundles(tmp_path):
    write_sync_bundle(records(2), tmp_path, box_id="box-1", school_id="s")
    (tmp_path / ".staging-chalkbox-sync-x").mkdir()
    assert len(find_sync_bundles(tmp_path)) == 1


@pytest.mark.parametrize("change, field", [
    (lambda m: m["files"].update({"manifest.json": 5}), "files.manifest.json"),
    (lambda m: m["files"].update({"/etc/passwd": {"sha256": "0" * 64}}), "files"),
    (lambda m: m["files"].pop("records.jsonl"), "files.records.jsonl"),
    (lambda m: m.update(format_version=2), "format_version"),
    (lambda m: m.update(format="zip"), "format"),
])
def test_malformed_manifest_is_refused_by_field(tmp_path, change, field):
    path = write_sync_bundle(records(2), tmp_path, box_id="box-1", school_id="s")
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError) as info:
        read_sync_bundle(path)
    assert info.value.field == field


@pytest.mark.parametrize("line", [b"[" * 5000, b"not json", b'{"id": 1}', b"[]"])
def test_a_bad_line_with_a_matching_checksum_is_refused(tmp_path, line):
    import hashlib

    path = write_sync_bundle(records(2), tmp_path, box_id="box-1", school_id="s")
    body = (path / RECORDS_FILE).read_bytes() + line + b"\n"
    (path / RECORDS_FILE).write_bytes(body)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][RECORDS_FILE]["sha256"] = hashlib.sha256(body).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="line 3"):
        read_sync_bundle(path)
