import json

import pytest

from appliance.bundle import verify_bundle
from export.build import build_bundle
from export.checks import CheckLimits
from export.errors import ExportError


def test_bundle_carries_what_the_box_needs(grade_bundle, keypair):
    manifest = json.loads((grade_bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"}
    for key in ("labels", "max_length", "temperature", "thresholds", "metrics", "input_format",
                "model_id", "version", "task", "format_version"):
        assert key in manifest
    checks = manifest["metrics"]["export"]
    assert checks["fp32_max_logit_delta"] <= 1e-4
    assert checks["int8_agreement"] >= 0.98  # the real gate, even on the tiny test model
    assert checks["fp32_accuracy"] - checks["int8_accuracy"] <= 0.01
    assert checks["bundle_model_bytes"] == (grade_bundle / "model.onnx").stat().st_size
    assert checks["bundle_model_bytes"] < checks["fp32_bytes"] / 3  # int8 weights
    verify_bundle(grade_bundle, keypair[1])


@pytest.mark.parametrize("limits, needle", [
    (CheckLimits(max_logit_delta=0.0), "differs from PyTorch"),
    (CheckLimits(min_agreement=1.01, max_accuracy_drop=1.0), "agrees with fp32"),
])
def test_a_failed_check_leaves_no_bundle(build_request_for, tmp_path, limits, needle):
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=needle):
        build_bundle(build_request_for(out, limits=limits))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unsupported_target_is_refused(build_request_for, tmp_path):
    with pytest.raises(ExportError, match="unsupported quantization target"):
        build_bundle(build_request_for(tmp_path / "b", target="riscv"))
    assert list(tmp_path.iterdir()) == []
