import json
import shutil

import pytest

from appliance.bundle import verify_bundle
from appliance.errors import BundleError
from appliance.models import current_bundle_dir, install_bundle, installed, rollback


def test_a_built_bundle_verifies(grade_bundle, keypair):
    manifest = verify_bundle(grade_bundle, keypair[1])
    assert manifest.task == "grade" and manifest.version == "1.0.0"
    assert manifest.quantization.startswith("int8-dynamic-")
    assert manifest.metrics["export"]["fp32_max_logit_delta"] <= 1e-4


@pytest.fixture
def copy_of(grade_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(grade_bundle, path)
    return path


def test_tampered_model_is_refused(copy_of, keypair):
    with open(copy_of / "model.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="checksum"):
        verify_bundle(copy_of, keypair[1])


def test_edited_manifest_is_refused(copy_of, keypair):
    manifest = json.loads((copy_of / "manifest.json").read_text())
    manifest["thresholds"]["review_below"] = 0.0
    (copy_of / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="signature"):
        verify_bundle(copy_of, keypair[1])


def test_other_key_and_missing_signature_are_refused(copy_of, tmp_path):
    from export.keys import keygen

    _, other_public = keygen(tmp_path / "other.pem")
    with pytest.raises(BundleError, match="signature"):
        verify_bundle(copy_of, other_public)
    (copy_of / "manifest.sig").unlink()
    with pytest.raises(BundleError, match="manifest.sig"):
        verify_bundle(copy_of, other_public)


def test_install_switch_and_rollback(grade_bundle, build_request_for, keypair, tmp_path):
    from export.build import build_bundle

    second = tmp_path / "second"
    build_bundle(build_request_for(second, version="2.0.0", parent_version="1.0.0"))
    models = tmp_path / "models"
    install_bundle(models, grade_bundle, keypair[1])
    install_bundle(models, second, keypair[1])
    assert current_bundle_dir(models).name.endswith("2.0.0")
    roles = {row["version"]: row["role"] for row in installed(models)}
    assert roles == {"1.0.0": "previous", "2.0.0": "current"}
    assert rollback(models, keypair[1]).version == "1.0.0"
    assert current_bundle_dir(models).name.endswith("1.0.0")


def test_refused_bundle_leaves_the_installed_one_in_place(grade_bundle, copy_of, keypair, tmp_path):
    models = tmp_path / "models"
    install_bundle(models, grade_bundle, keypair[1])
    (copy_of / "tokenizer.json").write_text("{}")
    with pytest.raises(BundleError):
        install_bundle(models, copy_of, keypair[1])
    assert current_bundle_dir(models).name.endswith("1.0.0")
