"""Temperature scaling: fitted on validation logits, pure and deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from export.metrics import expected_calibration_error
from training.calibration import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    calibration_metrics,
    confidences_and_hits,
    fit_temperature,
    negative_log_likelihood,
)
from training.errors import TrainingError


def synthetic(scale: float, n: int = 2000, classes: int = 3, seed: int = 0):
    """Logits of a model that is right about 70% of the time, calibrated at scale 1 (labels
    are drawn from softmax(logits)); scale > 1 makes it overconfident, < 1 underconfident."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(n, classes))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in probabilities])
    return logits * scale, labels


def test_overconfident_logits_get_a_temperature_above_one_and_a_lower_ece():
    logits, labels = synthetic(scale=3.0)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)  # undoes the scaling
    before = expected_calibration_error(*confidences_and_hits(logits, labels))
    after = expected_calibration_error(*confidences_and_hits(logits, labels, temperature))
    assert before > 0.1 and after < before / 3
    metrics = calibration_metrics(logits, labels, temperature)
    assert metrics == {"temperature": temperature, "ece_uncalibrated": before, "ece": after}


def test_underconfident_logits_get_a_temperature_below_one():
    logits, labels = synthetic(scale=0.5)
    assert fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.15)


def test_the_fit_is_the_minimum_of_the_nll_and_deterministic():
    logits, labels = synthetic(scale=2.0, n=300, classes=2, seed=3)
    temperature = fit_temperature(logits, labels)
    grid = np.linspace(MIN_TEMPERATURE, MAX_TEMPERATURE, 4000)
    best_on_grid = min(negative_log_likelihood(logits, labels, t) for t in grid)
    assert negative_log_likelihood(logits, labels, temperature) <= best_on_grid + 1e-9
    assert fit_temperature(logits.copy(), labels.copy()) == temperature
    # the inputs are not modified
    again, same_labels = synthetic(scale=2.0, n=300, classes=2, seed=3)
    assert np.array_equal(logits, again) and np.array_equal(labels, same_labels)


def test_nll_matches_a_direct_computation():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1])
    expected = -np.mean([np.log(np.exp(2) / (np.exp(2) + 1)),
                         np.log(1 / (1 + np.e)), np.log(0.5)])
    assert negative_log_likelihood(logits, labels, 1.0) == pytest.approx(expected)
    assert negative_log_likelihood(logits, labels, 2.0) != pytest.approx(expected)


def test_separable_data_stops_at_the_lower_bound_and_no_data_means_no_scaling():
    logits = np.array([[5.0, -5.0], [-4.0, 4.0], [3.0, -3.0]])
    assert fit_temperature(logits, np.array([0, 1, 0])) == pytest.approx(MIN_TEMPERATURE)
    assert fit_temperature(logits, np.array([1, 0, 1])) == pytest.approx(MAX_TEMPERATURE)
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 1.0


@pytest.mark.parametrize("logits, labels, words", [
    (np.zeros((3,)), np.zeros(3, dtype=int), "shape"),
    (np.zeros((3, 2)), np.zeros(2, dtype=int), "labels for 3 rows"),
    (np.zeros((3, 2)), np.array([0, 1, 2]), "class indices"),
    (np.zeros((2, 2)), np.array([0.0, 1.0]), "class indices"),
    (np.array([[np.nan, 0.0]]), np.array([0]), "NaN"),
])
def test_bad_inputs_are_refused_with_a_reason(logits, labels, words):
    with pytest.raises(TrainingError, match=words):
        fit_temperature(logits, labels)
