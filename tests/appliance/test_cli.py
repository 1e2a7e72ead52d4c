"""Every CLI failure: one line on stderr naming the problem, a hint, non-zero exit, no traceback."""
from pathlib import Path

import pytest

from tests_cli import run_chalkbox as run


def assert_clean_failure(result, needle):
    """Non-zero, and exactly one line on stderr naming the problem and the fix."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert "(hint: " in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["box", "serve", "--data-dir", "/nonexistent/box"], "not a provisioned box"),
    (["box", "sync", "export", "--data-dir", "/nonexistent/box", "--to", "/tmp"], "provision"),
    (["box", "model", "list", "--data-dir", "/nonexistent/box"], "provision"),
    (["export", "verify", "/nonexistent", "--public-key", "/nonexistent"], "does not exist"),
    (["box", "provision", "--data-dir", "/tmp/x"], "--school-id is required"),
    (["box", "serve", "--nope"], "No such option"),
    (["box", "nosuchcommand"], "No such command"),
    (["train", "ingest", "/nonexistent"], "does not exist"),
])
def test_wrong_paths(args, needle):
    assert_clean_failure(run(*args), needle)


def test_provision_with_a_bad_key(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    result = run("box", "provision", "--data-dir", tmp_path / "box", "--school-id", "s",
                 "--public-key", key)
    assert_clean_failure(result, "not a PEM public key")


def test_install_a_tampered_bundle_keeps_the_box_as_it_was(box_dir, grade_bundle, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(grade_bundle, bad)
    (bad / "model.onnx").write_bytes(b"garbage")
    assert_clean_failure(run("box", "model", "install", "--data-dir", box_dir, bad), "checksum")
    listed = run("box", "model", "list", "--data-dir", box_dir)
    assert listed.returncode == 0 and "current" in listed.stdout


def test_serve_without_a_model_refuses_in_one_line(tmp_path, keypair):
    from appliance.provision import ProvisionRequest, provision

    provision(ProvisionRequest(data_dir=tmp_path / "box", school_id="s", public_key=keypair[1]))
    assert_clean_failure(run("box", "serve", "--data-dir", tmp_path / "box"),
                         "no grade model is installed")


def test_ingest_of_a_dir_without_bundles(tmp_path):
    assert_clean_failure(run("train", "ingest", tmp_path, "--store", tmp_path / "c.db"),
                         "no sync bundle")


def test_export_build_of_a_non_checkpoint(tmp_path, keypair):
    result = run("export", "build", "--model", tmp_path, "--out", tmp_path / "b", "--key", keypair[0])
    assert_clean_failure(result, "not a Hugging Face checkpoint")
    assert not (tmp_path / "b").exists()


def test_keygen_refuses_to_overwrite(tmp_path):
    assert run("export", "keygen", tmp_path / "k.pem").returncode == 0
    assert Path(tmp_path / "k.pub.pem").is_file()
    assert_clean_failure(run("export", "keygen", tmp_path / "k.pem"), "already exists")
