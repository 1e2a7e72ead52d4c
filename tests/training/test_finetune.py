"""Fine-tuning with the Trainer on a tiny random BERT: settings, early stopping, resume,
class weights, calibration, TensorBoard and the report, all for real."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from training.errors import TrainingError
from training.finetune import (
    FinetuneConfig,
    build_trainer,
    class_weights_for,
    finetune,
    resolve_precision,
    weighted_loss_trainer_class,
)

QUIET = {"tensorboard": False, "report": False}


@pytest.fixture(scope="module")
def small_data():
    """48 training and 24 validation pairs of the demo content, both labels in each."""
    from appliance.content import demo_content_dir, read_labelled_content
    from appliance.inference.pairs import labelled_grade_pairs

    exercises, answers = read_labelled_content(demo_content_dir())
    pairs, labels = labelled_grade_pairs(exercises, answers, "reference|answer")
    by_label = {label: [i for i, x in enumerate(labels) if x == label] for label in set(labels)}
    train_ids = by_label["correct"][:24] + by_label["incorrect"][:24]
    eval_ids = by_label["correct"][24:36] + by_label["incorrect"][24:36]
    pick = lambda ids: ([pairs[i] for i in ids], [labels[i] for i in ids])  # noqa: E731
    return pick(sorted(train_ids)), pick(sorted(eval_ids))


def config(tiny_base, out: Path, **changes) -> FinetuneConfig:
    settings = {"base_model": str(tiny_base), "batch_size": 16, "max_length": 48,
                "learning_rate": 1e-3, "epochs": 1, **QUIET, **changes}
    return FinetuneConfig(output_dir=out, **settings)


def trainer_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


def weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


# --------------------------------------------------------------------------- settings

@pytest.mark.parametrize("change, words", [
    ({"lr_scheduler": "step"}, "lr_scheduler"),
    ({"class_weights": "inverse"}, "class_weights"),
    ({"padding": "longest"}, "padding"),
    ({"precision": "fp8"}, "precision"),
    ({"early_stopping_patience": -1}, "early_stopping_patience"),
    ({"early_stopping_patience": 2, "keep_checkpoints": 0}, "keep_checkpoints"),
    ({"max_steps": 0}, "max_steps"),
    ({"labels": ("correct",), "positive_label": "correct"}, "labels"),
])
def test_bad_settings_are_refused(tmp_path, change, words):
    with pytest.raises(TrainingError, match=words):
        FinetuneConfig(output_dir=tmp_path, **change)


def test_every_training_command_option_is_a_finetune_setting():
    """train grade / match pass finetune_options' values straight to FinetuneConfig."""
    import click

    from training.cli import finetune_options

    command = finetune_options(click.Command("probe", callback=lambda **_: None))
    names = {p.name for p in command.params} - {"out_dir"}
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    assert {"lr_scheduler", "early_stopping_patience", "resume", "class_weights", "report",
            "tensorboard", "keep_checkpoints", "precision"} <= names
    assert names <= fields, names - fields
    defaults = {p.name: p.default for p in command.params if p.name in fields}
    FinetuneConfig(output_dir=Path("unused"), **defaults)  # the defaults are valid together


def test_precision_is_bf16_then_fp16_on_a_gpu_and_fp32_on_the_cpu():
    assert resolve_precision("auto", cuda=False, bf16_supported=False) == "fp32"
    assert resolve_precision("auto", cuda=True, bf16_supported=True) == "bf16"
    assert resolve_precision("auto", cuda=True, bf16_supported=False) == "fp16"
    assert resolve_precision("fp32", cuda=True, bf16_supported=True) == "fp32"
    with pytest.raises(TrainingError, match="fp16 training needs a CUDA GPU"):
        resolve_precision("fp16", cuda=False, bf16_supported=False)


def test_balanced_class_weights_follow_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    labels = [0, 0, 0, 1, 0, 1, 0, 0]
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=np.array(labels))
    assert class_weights_for(labels, 2, "balanced") == pytest.approx(list(expected))
    assert class_weights_for([0, 0, 1], 3, "balanced") == pytest.approx([0.5, 1.0, 1.0])
    assert class_weights_for(labels, 2, "none") is None


def test_dynamic_padding_groups_by_length_and_max_length_pads_everything(tiny_base, small_data,
                                                                         tmp_path):
    train, _ = small_data
    dynamic = build_trainer(config(tiny_base, tmp_path / "a", lr_scheduler="cosine"), train,
                            None).trainer
    assert dynamic.args.group_by_length and dynamic.args.lr_scheduler_type == "cosine"
    assert dynamic.args.report_to == [] and not dynamic.args.bf16 and not dynamic.args.fp16
    batch = dynamic.data_collator(dynamic.train_dataset[:4])
    assert batch["input_ids"].shape[1] == max(len(r["input_ids"]) for r in
                                              dynamic.train_dataset[:4]) < 48
    fixed = build_trainer(config(tiny_base, tmp_path / "b", padding="max_length"), train,
                          None).trainer
    assert not fixed.args.group_by_length and fixed.args.lr_scheduler_type == "linear"
    assert fixed.data_collator(fixed.train_dataset[:4])["input_ids"].shape[1] == 48


def test_early_stopping_needs_a_validation_set(tiny_base, small_data, tmp_path):
    with pytest.raises(TrainingError, match="early stopping needs a validation set"):
        finetune(config(tiny_base, tmp_path, early_stopping_patience=1), small_data[0], None)


def test_labels_outside_the_tasks_set_are_refused_before_training(tiny_base, small_data,
                                                                   tmp_path):
    train, evaluation = small_data
    odd = (evaluation[0], ["maybe"] + evaluation[1][1:])
    with pytest.raises(TrainingError, match=r"labels \['maybe'\] in the data"):
        finetune(config(tiny_base, tmp_path), train, odd)
    assert not (tmp_path / "trainer").exists()


# --------------------------------------------------------------------------- class weights

@pytest.mark.slow
def test_weighted_loss_is_the_class_weighted_mean_of_the_nll(tiny_base, small_data, tmp_path):
    import torch

    train, _ = small_data
    imbalanced = (train[0][:30], train[1][:30])
    setup = build_trainer(config(tiny_base, tmp_path, class_weights="balanced", max_steps=2,
                                 keep_checkpoints=0), imbalanced, None)
    trainer = setup.trainer
    assert isinstance(trainer, weighted_loss_trainer_class())
    counts = np.bincount([r["labels"] for r in trainer.train_dataset], minlength=2)
    assert counts.min() != counts.max()  # the test needs unequal classes
    expected_weights = len(imbalanced[0]) / (2 * counts)
    assert trainer.class_weights.numpy() == pytest.approx(expected_weights)

    batch = trainer.data_collator(trainer.train_dataset[:16])
    trainer.model.eval()
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, batch))
        logits = trainer.model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"],
                               token_type_ids=batch["token_type_ids"]).logits.double().numpy()
    y = batch["labels"].numpy()
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -log_p[np.arange(len(y)), y]
    w = expected_weights[y]
    assert loss == pytest.approx(float((w * nll).sum() / w.sum()), rel=1e-5)
    assert loss != pytest.approx(float(nll.mean()), rel=1e-5)  # not the plain mean

    trainer.train()  # and the subclass trains
    assert trainer.state.global_step == 2
    assert all(np.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)


# --------------------------------------------------------------------------- whole runs

@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch_and_records_calibration(tiny_base, small_data,
                                                                     tmp_path):
    # lr 1e-7: the weights move, the predictions do not, so macro-F1 never improves after
    # epoch 1 and patience 1 stops the run after epoch 2 of 6.
    out = tmp_path / "run"
    metrics = finetune(config(tiny_base, out, epochs=6, learning_rate=1e-7,
                              early_stopping_patience=1, dataset_snapshot="demo@test",
                              tensorboard=True, report=True), *small_data)
    info = json.loads((out / "chalkbox.json").read_text())
    assert info["metrics"]["training"]["epochs"] == 2.0
    assert info["metrics"]["training"]["best_checkpoint"] == "checkpoint-3"
    kept = sorted(p.name for p in (out / "trainer").glob("checkpoint-*"))
    assert kept == ["checkpoint-3", "checkpoint-6"]
    final, best, last = (weights(out), weights(out / "trainer" / "checkpoint-3"),
                         weights(out / "trainer" / "checkpoint-6"))
    assert all(np.array_equal(final[k], best[k]) for k in best)
    assert not all(np.array_equal(final[k], last[k]) for k in last)

    assert info["dataset_snapshot"] == "demo@test"
    assert info["temperature"] == metrics["temperature"] != 1.0
    assert info["metrics"]["validation"] == metrics
    assert set(metrics) >= {"accuracy", "macro_f1", "loss", "n", "ece", "ece_uncalibrated"}
    # (ECE need not drop here: this model says 50/50 to everything; see test_calibration.py)
    assert metrics["n"] == 24
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["ece_uncalibrated"] <= 1
    assert list((out / "runs").rglob("events.out.tfevents.*"))  # TensorBoard logs
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


@pytest.mark.slow
def test_resume_continues_from_the_newest_checkpoint(tiny_base, small_data, tmp_path, caplog):
    out = tmp_path / "run"
    finetune(config(tiny_base, out, epochs=1), *small_data)
    first = out / "trainer" / "checkpoint-3"
    first_state = trainer_state(first)
    first_bytes = (first / "model.safetensors").read_bytes()
    assert first_state["global_step"] == 3

    with caplog.at_level(logging.INFO, logger="training.finetune"):
        finetune(config(tiny_base, out, epochs=2, resume=True), *small_data)
    assert f"resuming from {first}" in caplog.text
    state = trainer_state(out / "trainer" / "checkpoint-6")
    assert state["global_step"] == 6 and state["epoch"] == 2.0
    # The first epoch is the first run's, carried over, not trained again (a fresh 2-epoch
    # run would have another learning-rate schedule and other validation figures).
    evals = [e for e in state["log_history"] if "eval_loss" in e]
    assert evals[0] == next(e for e in first_state["log_history"] if "eval_loss" in e)
    assert len(evals) == 2
    assert (first / "model.safetensors").read_bytes() == first_bytes

    # Not resuming: a fresh run, which drops the older run's checkpoints; and without a
    # validation set: no temperature, no validation metrics, learning curves only.
    assert finetune(config(tiny_base, out, epochs=1, report=True), small_data[0], None) == {}
    assert sorted(p.name for p in (out / "trainer").glob("checkpoint-*")) == ["checkpoint-3"]
    info = json.loads((out / "chalkbox.json").read_text())
    assert info["temperature"] == 1.0 and "validation" not in info["metrics"]
    assert info["metrics"]["training"]["steps"] == 3
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 1


def test_the_temperature_can_be_fitted_on_held_out_answers(tiny_base, small_data, tmp_path):
    """With a calibration set the bundle's temperature is the one fitted there (not on the
    validation questions), and the validation ECE is reported at that temperature."""
    from training.calibration import confidences_and_hits, fit_temperature
    from training.evaluate import CheckpointModel
    from export.metrics import expected_calibration_error

    train, evaluation = small_data
    calibration = (train[0][::3], train[1][::3])
    out = tmp_path / "run"
    metrics = finetune(config(tiny_base, out, epochs=2), train, evaluation, calibration)
    info = json.loads((out / "chalkbox.json").read_text())
    fitted = info["metrics"]["calibration"]
    assert fitted["n"] == len(calibration[0]) and fitted["on"].startswith("held-out answers")
    assert info["temperature"] == fitted["temperature"] == metrics["temperature"]

    model = CheckpointModel(out)  # the saved model's own logits give the same figures
    cal_logits, val_logits = model.logits(calibration[0]), model.logits(evaluation[0])
    index = {label: i for i, label in enumerate(info["labels"])}
    cal_truth = np.array([index[y] for y in calibration[1]])
    val_truth = np.array([index[y] for y in evaluation[1]])
    assert fit_temperature(cal_logits, cal_truth) == pytest.approx(fitted["temperature"],
                                                                   rel=1e-3)
    assert fit_temperature(val_logits, val_truth) != pytest.approx(fitted["temperature"],
                                                                   rel=1e-2)
    assert metrics["ece"] == pytest.approx(expected_calibration_error(
        *confidences_and_hits(val_logits, val_truth, fitted["temperature"])), abs=1e-6)
