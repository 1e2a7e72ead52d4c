"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits so that
softmax(logits / T) is calibrated. The box divides its logits by the manifest's temperature
(appliance.inference.engine.softmax), so T is all that ships.

Pure numpy: the negative log-likelihood is convex in the inverse temperature b = 1/T (it is
logsumexp(b z) - b z_y, a log-sum-exp of linear functions minus a linear one), so a golden-section
search over b inside fixed bounds finds the one minimum, deterministically, with no optimiser
state or random start.
"""
from __future__ import annotations

import math
import numpy as np

from appliance.inference.engine import softmax
from export.metrics import expected_calibration_error

from .errors import TrainingError

# T outside these is a sign of too little validation data, not of a real calibration need: a
# perfectly separated validation set drives T to 0 (every answer "100% sure") and a random one
# drives it to infinity (every answer 50/50).
MIN_TEMPERATURE = 0.1
MAX_TEMPERATURE = 10.0
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _checked(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or z.shape[1] < 2:
        raise TrainingError(f"logits must be a (n, classes >= 2) array, got shape {z.shape}",
                            hint="pass the model's raw logits, one row per example")
    if y.shape != (z.shape[0],):
        raise TrainingError(f"{y.shape[0] if y.ndim else 0} labels for {z.shape[0]} rows of "
                            "logits", hint="pass one integer class index per row")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0
                   or y.max() >= z.shape[1]):
        raise TrainingError(f"labels must be class indices in [0, {z.shape[1]})",
                            hint="map label names to their index in the model's label order")
    if not np.isfinite(z).all():
        raise TrainingError("the logits contain NaN or infinity",
                            hint="the model diverged; lower the learning rate")
    return z, y.astype(np.int64)


def negative_log_likelihood(logits, labels, temperature: float) -> float:
    """Mean NLL of the true labels under softmax(logits / temperature)."""
    z, y = _checked(logits, labels)
    if y.size == 0:
        return 0.0
    scaled = z / temperature
    rows = np.arange(y.size)
    top_index = scaled.argmax(axis=1)
    top = scaled[rows, top_index]
    # logsumexp - z_y computed as (top - z_y) + log1p(the others): the NLL of a confident right
    # answer (about exp(-margin)) then does not round to 0, and the search still sees a slope.
    others = np.exp(scaled - top[:, None])
    others[rows, top_index] = 0.0
    return float(np.mean((top - scaled[rows, y]) + np.log1p(others.sum(axis=1))))


def fit_temperature(logits, labels, *, min_temperature: float = MIN_TEMPERATURE,
                    max_temperature: float = MAX_TEMPERATURE, tolerance: float = 1e-6) -> float:
    """The T in [min_temperature, max_temperature] that minimises the validation NLL of
    softmax(logits / T); 1.0 for no examples. Pure and deterministic."""
    z, y = _checked(logits, labels)
    if not 0 < min_temperature <= 1.0 <= max_temperature:
        raise TrainingError("temperature bounds must satisfy 0 < min <= 1 <= max")
    if y.size == 0:
        return 1.0

    def loss(inverse: float) -> float:
        return negative_log_likelihood(z, y, 1.0 / inverse)

    low, high = 1.0 / max_temperature, 1.0 / min_temperature
    a, b = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    fa, fb = loss(a), loss(b)
    while high - low > tolerance:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - _GOLDEN * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + _GOLDEN * (high - low)
            fb = loss(b)
    inverse = (low + high) / 2.0
    # The search cannot land exactly on a bound; a minimum at the edge is the bound itself.
    for edge in (1.0 / max_temperature, 1.0 / min_temperature):
        if loss(edge) < loss(inverse):
            inverse = edge
    return float(1.0 / inverse)


def confidences_and_hits(logits, labels, temperature: float = 1.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The probability of each prediction (as the box computes it) and whether it was right."""
    z, y = _checked(logits, labels)
    probabilities = softmax(z, temperature)
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == y


def calibration_metrics(logits, labels, temperature: float) -> dict[str, float]:
    """ECE before (T = 1) and after temperature scaling, and T itself."""
    before = expected_calibration_error(*confidences_and_hits(logits, labels, 1.0))
    after = expected_calibration_error(*confidences_and_hits(logits, labels, temperature))
    return {"temperature": float(temperature), "ece_uncalibrated": before, "ece": after}


HELD_OUT_ANSWERS = "held-out answers of training questions"


def fit_on_held_out_answers(logits, labels) -> tuple[float, dict[str, float]]:
    """The temperature fitted on a calibration set of held-out answers, and the figures a
    checkpoint records for it (n, where it was fitted, ECE before and after)."""
    temperature = fit_temperature(logits, labels)
    return temperature, {"n": int(len(labels)), "on": HELD_OUT_ANSWERS,
                         **calibration_metrics(logits, labels, temperature)}

