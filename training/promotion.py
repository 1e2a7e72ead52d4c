"""Whether a candidate model replaces the production one: a pure rule over two evaluations.

Both evaluations come from ``export.evaluate.evaluate_model`` on the same fixed evaluation
set (the round's ``evaluate`` stage), so the figures are comparable. The rule, in order:

1. no production model yet -> promote (the first model of a fleet has nothing to beat);
2. the candidate's macro-F1 must beat production's by at least ``min_gain`` (absolute);
3. no slice (subject, grade band) with at least ``min_slice_n`` answers may lose more than
   ``max_slice_drop`` macro-F1 - a model better on average but worse for one module would
   make that module's teachers distrust every grade. Smaller slices are too noisy to veto
   and are listed as skipped.

Every reason is kept, so the round report can say why a model was or was not promoted.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .errors import TrainingError


@dataclasses.dataclass(frozen=True)
class PromotionRule:
    min_gain: float = 0.01
    max_slice_drop: float = 0.05
    min_slice_n: int = 20

    def __post_init__(self):
        if not -1.0 <= self.min_gain <= 1.0:
            raise TrainingError(f"min_gain must be between -1 and 1, got {self.min_gain}",
                                hint="a macro-F1 difference, e.g. 0.01 for one point")
        if not 0.0 <= self.max_slice_drop <= 1.0:
            raise TrainingError(f"max_slice_drop must be between 0 and 1, got "
                                f"{self.max_slice_drop}")
        if self.min_slice_n < 1:
            raise TrainingError(f"min_slice_n must be >= 1, got {self.min_slice_n}")


@dataclasses.dataclass
class Decision:
    promote: bool
    reasons: list[str]
    gain: float | None = None
    slice_changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def slice_changes(candidate: dict, production: dict) -> list[dict[str, Any]]:
    """Per slice: n, production and candidate macro-F1 and the change (candidate - production)."""
    changes = []
    for key, groups in candidate.get("slices", {}).items():
        before = production.get("slices", {}).get(key, {})
        for name, figures in groups.items():
            if name not in before:
                continue
            changes.append({"slice": key, "name": name, "n": figures["n"],
                            "production": before[name]["macro_f1"],
                            "candidate": figures["macro_f1"],
                            "change": figures["macro_f1"] - before[name]["macro_f1"]})
    return changes


def decide(candidate: dict | None, production: dict | None, rule: PromotionRule) -> Decision:
    if candidate is None:
        return Decision(False, ["no candidate model (its export failed its checks)"])
    if production is None:
        return Decision(True, ["no production model yet: the first model is promoted"])
    gain = candidate["macro_f1"] - production["macro_f1"]
    changes = slice_changes(candidate, production)
    reasons = []
    promote = True
    if gain < rule.min_gain:
        promote = False
        reasons.append(f"macro-F1 {candidate['macro_f1']:.4f} vs production "
                       f"{production['macro_f1']:.4f}: gain {gain:+.4f} is below the required "
                       f"{rule.min_gain:+.4f}")
    else:
        reasons.append(f"macro-F1 {candidate['macro_f1']:.4f} vs production "
                       f"{production['macro_f1']:.4f}: gain {gain:+.4f} meets {rule.min_gain:+.4f}")
    for change in changes:
        label = f"{change['slice']} {change['name']} (n={change['n']})"
        if change["n"] < rule.min_slice_n:
            continue
        if change["change"] < -rule.max_slice_drop:
            promote = False
            reasons.append(f"slice {label} drops {change['change']:+.4f} macro-F1 "
                           f"(at most -{rule.max_slice_drop:.4f} allowed)")
    skipped = [c for c in changes if c["n"] < rule.min_slice_n]
    if skipped:
        reasons.append(f"{len(skipped)} slice(s) under {rule.min_slice_n} answers not judged")
    return Decision(promote, reasons, gain, changes)
