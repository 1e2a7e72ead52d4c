"""The distilled student, measured and calibrated after training (training.distill).

Measured as ``chalkbox train evaluate`` measures a checkpoint, in pair order (the Trainer's
own predict groups by length and so reorders rows). The box's confidences come from the
student, so it is the student that is calibrated: on held-out answers of the training
questions when there are some (``--calibration-fraction``), else on the validation set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from export.checkpoint import CheckpointInfo


def comparison_metrics(student_pred, teacher_pred, truth, labels: Sequence[str]) -> dict[str, float]:
    """The student's and the teacher's scores on the same pairs (label indices), and how
    close they are."""
    from export.metrics import accuracy, macro_f1

    indices = range(len(labels))
    student, teacher = accuracy(truth, student_pred), accuracy(truth, teacher_pred)
    return {"accuracy": student, "macro_f1": macro_f1(truth, student_pred, indices),
            "n": len(truth), "teacher_accuracy": teacher,
            "teacher_macro_f1": macro_f1(truth, teacher_pred, indices),
            "agreement_with_teacher": float(np.mean(np.asarray(student_pred)
                                                    == np.asarray(teacher_pred))),
            "accuracy_retained": student / teacher if teacher else float("nan")}


def measure_student(saved: CheckpointInfo, output_dir: Path, evaluation: tuple[list, list],
                    teacher_eval: np.ndarray | None, calibration: tuple[list, list],
                    label_index: dict[str, int], batch_size: int) -> dict[str, Any]:
    """Validation metrics (empty without a validation set); the temperature and its figures
    written into the saved checkpoint's chalkbox.json."""
    from .calibration import fit_on_held_out_answers, fit_temperature
    from .distill import _forward
    from .evaluate import CheckpointModel

    (eval_pairs, eval_labels), (cal_pairs, cal_labels) = evaluation, calibration
    if not eval_pairs and not cal_pairs:
        return {}
    model = CheckpointModel(output_dir)
    if cal_pairs:
        logits = _forward(model, cal_pairs, batch_size)[0]
        truth = [label_index[label] for label in cal_labels]
        temperature, saved.metrics["calibration"] = fit_on_held_out_answers(logits, truth)
        saved.temperature = float(temperature)
    metrics: dict[str, Any] = {}
    if eval_pairs:
        logits = _forward(model, eval_pairs, batch_size)[0]
        truth = [label_index[label] for label in eval_labels]
        metrics = comparison_metrics(logits.argmax(axis=1), teacher_eval.argmax(axis=1), truth,
                                     list(label_index))
        if not cal_pairs:
            saved.temperature = float(fit_temperature(logits, truth))
        metrics["temperature"] = saved.temperature
        saved.metrics["validation"] = metrics
    saved.save(output_dir)
    return metrics
