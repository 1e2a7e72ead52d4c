"""The run report: one self-contained HTML file with embedded PNG plots."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from export.metrics import expected_calibration_error
from training.calibration import confidences_and_hits
from training.report import REPORT_FILE, ValidationResult, learning_curves, reliability_bins, \
    write_report

LOG_HISTORY = [
    {"loss": 0.70, "learning_rate": 1e-4, "epoch": 0.5, "step": 2},
    {"loss": 0.65, "learning_rate": 8e-5, "epoch": 1.0, "step": 4},
    {"eval_loss": 0.66, "eval_accuracy": 0.6, "eval_macro_f1": 0.55, "epoch": 1.0, "step": 4},
    {"loss": 0.50, "learning_rate": 4e-5, "epoch": 1.5, "step": 6},
    {"eval_loss": 0.58, "eval_accuracy": 0.7, "eval_macro_f1": 0.68, "epoch": 2.0, "step": 8},
    {"train_runtime": 3.2, "train_loss": 0.61, "epoch": 2.0, "step": 8},
]


def validation(labels=("incorrect", "correct"), n=200, seed=1) -> ValidationResult:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(labels), size=n)
    logits = rng.normal(0, 1, size=(n, len(labels)))
    logits[np.arange(n), truth] += 1.5  # right about 80% of the time
    return ValidationResult(labels=tuple(labels), logits=logits * 4, truth=truth,
                            temperature=4.0, metrics={"temperature": 4.0, "loss": 0.51,
                                                      "ece": 0.03, "ece_uncalibrated": 0.2})


def images(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                          html)]


def test_learning_curves_pick_training_loss_and_per_epoch_validation():
    curves = learning_curves(LOG_HISTORY)
    assert curves["train_loss"] == [(0.5, 0.70), (1.0, 0.65), (1.5, 0.50)]
    assert curves["eval_loss"] == [(1.0, 0.66), (2.0, 0.58)]
    assert curves["eval_macro_f1"] == [(1.0, 0.55), (2.0, 0.68)]


def test_reliability_bins_are_the_bins_ece_averages_over():
    result = validation()
    confidence, hits = confidences_and_hits(result.logits, result.truth)
    rows = reliability_bins(confidence, hits)
    assert sum(r["count"] for r in rows) == len(confidence)
    weighted_gap = sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows)
    assert weighted_gap / len(confidence) == pytest.approx(
        expected_calibration_error(confidence, hits))
    assert all(r["low"] < r["confidence"] <= r["high"] for r in rows)


def test_report_is_self_contained_with_the_three_plots_and_the_metrics(tmp_path):
    path = write_report(tmp_path, LOG_HISTORY, validation())
    assert path == tmp_path / REPORT_FILE
    html = path.read_text(encoding="utf-8")
    pngs = images(html)
    assert len(pngs) == 3  # learning curves, confusion matrix, reliability diagram
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in pngs)
    for outside in ("http:", "https:", "<script", "<link", "url("):
        assert outside not in html
    assert re.findall(r'src="([^"]{0,22})', html) == ["data:image/png;base64,"] * 3
    assert "<td>temperature</td><td>4.0000</td>" in html
    assert "<td>ece_uncalibrated</td><td>0.2000</td>" in html
    assert "<td>correct</td>" in html and "<td>incorrect</td>" in html  # per-class rows


def test_without_validation_only_the_learning_curves(tmp_path):
    html = write_report(tmp_path, LOG_HISTORY, None).read_text(encoding="utf-8")
    assert len(images(html)) == 1
    assert "No validation set" in html
    assert "<td>accuracy</td>" not in html


def test_label_names_are_escaped(tmp_path):
    html = write_report(tmp_path, [], validation(labels=("<b>no</b>", "yes & more"))
                        ).read_text(encoding="utf-8")
    assert "<b>no</b>" not in html and "&lt;b&gt;no&lt;/b&gt;" in html
    assert "yes &amp; more" in html
