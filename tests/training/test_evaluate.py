"""Evaluation: the metric functions on hand-made cases, and both evaluate commands end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.bundle import ModelManifest
from appliance.inference.grade import grade_answer
from export.datasets import read_semeval
from export.evaluate import evaluate_model
from export.metrics import (
    accuracy,
    average_precision,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    map_mrr,
    per_class_f1,
    precision,
    recall,
    reciprocal_rank,
    weighted_f1,
)

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SCI_UA = DATASETS / "semeval2013-task7-2way" / "sciEntsBank" / "test-unseen-answers"
BEETLE_UA = DATASETS / "semeval2013-task7-2way" / "beetle" / "test-unseen-answers"
WIKIQA_DEV = DATASETS / "wikiqa" / "dev"
needs_data = pytest.mark.skipif(not SCI_UA.is_dir(),
                                reason=f"the shared datasets are not at {DATASETS}")

LABELS = ("incorrect", "correct")
TRUTH = ["correct", "correct", "incorrect", "incorrect", "correct"]
PRED = ["correct", "incorrect", "incorrect", "correct", "correct"]
KEYS = {"n", "accuracy", "macro_f1", "weighted_f1", "precision", "recall", "per_class_f1",
        "confusion_matrix", "ece"}


def test_classification_metrics_on_a_hand_made_case():
    # correct: tp 2, fp 1, fn 1 -> p = r = f1 = 2/3; incorrect: tp 1, fp 1, fn 1 -> 1/2
    assert accuracy(TRUTH, PRED) == pytest.approx(0.6)
    assert per_class_f1(TRUTH, PRED, LABELS) == pytest.approx({"incorrect": 0.5, "correct": 2 / 3})
    assert macro_f1(TRUTH, PRED, LABELS) == pytest.approx(7 / 12)
    assert weighted_f1(TRUTH, PRED, LABELS) == pytest.approx((2 * 0.5 + 3 * 2 / 3) / 5)
    assert precision(TRUTH, PRED, LABELS) == pytest.approx(7 / 12)
    assert recall(TRUTH, PRED, LABELS) == pytest.approx(7 / 12)
    assert confusion_matrix(TRUTH, PRED, LABELS) == [[1, 1], [1, 2]]  # rows: true label
    result = classification_metrics(TRUTH, PRED, [0.9] * 5, LABELS)
    assert KEYS <= set(result)
    assert result["n"] == 5 and result["per_class"]["correct"]["support"] == 3
    assert result["ece"] == pytest.approx(0.3)  # one bin: confidence 0.9, accuracy 0.6


def test_a_label_never_predicted_scores_zero_not_an_error():
    assert per_class_f1(["correct", "incorrect"], ["correct", "correct"], LABELS)["incorrect"] == 0.0


def test_ece_on_a_toy_case():
    # bin (0.867, 0.933]: confidence 0.9, accuracy 0.5 -> 0.4; bin (0.533, 0.6]: 0.6 vs 0.5 -> 0.1
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 0]) == pytest.approx(0.25)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_map_and_mrr_on_two_questions():
    # q1 ranked: no, yes, yes -> AP (1/2 + 2/3) / 2 = 7/12, RR 1/2
    # q2 ranked: yes, no      -> AP 1, RR 1;  q3 has no correct candidate: left out
    questions = [([0.9, 0.8, 0.1], [0, 1, 1]), ([0.7, 0.3], [1, 0]), ([0.2, 0.4], [0, 0])]
    result = map_mrr(questions)
    assert result["map"] == pytest.approx((7 / 12 + 1) / 2)
    assert result["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["questions_ranked"] == 2
    assert average_precision([0, 1, 1]) == pytest.approx(7 / 12)
    assert reciprocal_rank([0, 0, 1]) == pytest.approx(1 / 3)


class OverlapModel:
    """A deterministic toy grader: P(correct) = word overlap (Jaccard) of the pair."""

    def __init__(self, input_format="reference|answer"):
        self.manifest = ModelManifest(model_id="overlap", version="1", task="grade",
                                      labels=LABELS, max_length=128, input_format=input_format,
                                      positive_label="correct")
        self.calls = 0

    def probabilities(self, pairs):
        self.calls += 1
        out = []
        for a, b in pairs:
            x, y = set(a.lower().split()), set(b.lower().split())
            p = len(x & y) / max(1, len(x | y))
            out.append([1 - p, p])
        return np.array(out)


@needs_data
def test_semeval_evaluation_grades_as_the_box_does():
    """Several references (Beetle): the batched evaluation judges each answer exactly as
    appliance.inference.grade.grade_answer would."""
    model = OverlapModel()
    data = read_semeval(BEETLE_UA).limited(80)
    result = evaluate_model(model, data, "semeval", batch_size=16)
    by_id = {e.id: e for e in data.exercises}
    truth, predicted = [], []
    for item in data.answers:
        exercise = by_id[item.exercise_id]
        grade = grade_answer(model, exercise.question, exercise.reference_answers, item.answer)
        truth.append(item.label)
        predicted.append(grade.label)
    assert result["n"] == 80
    assert result["accuracy"] == pytest.approx(accuracy(truth, predicted))
    assert result["confusion_matrix"] == confusion_matrix(truth, predicted, LABELS)
    assert result["n_pairs"] == sum(len(by_id[a.exercise_id].reference_answers)
                                    for a in data.answers)
    assert result["data"]["answers_read"] == 439
    # slices: each subject's figures are those of its own answers
    subjects = [by_id[a.exercise_id].subject for a in data.answers]
    for subject, figures in result["slices"]["subject"].items():
        rows = [i for i, s in enumerate(subjects) if s == subject]
        assert figures["n"] == len(rows)
        assert figures["accuracy"] == pytest.approx(
            accuracy([truth[i] for i in rows], [predicted[i] for i in rows]))
    assert sum(f["n"] for f in result["slices"]["subject"].values()) == 80
    assert sum(f["n"] for f in result["slices"]["grade_band"].values()) == 80


@needs_data
def test_wikiqa_evaluation_ranks_each_question():
    result = evaluate_model(OverlapModel("question|answer"), WIKIQA_DEV, "wikiqa", limit=20)
    assert KEYS | {"map", "mrr"} <= set(result)
    assert result["n_questions"] == 20
    assert 0 < result["map"] <= 1 and 0 < result["mrr"] <= 1


def chalkbox(capsys, *args):
    """The real command line in-process: (exit code, stdout, stderr)."""
    from appliance.cli import main

    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@needs_data
def test_export_and_train_evaluate_print_the_same_keys(capsys, grade_bundle, keypair,
                                                       tiny_checkpoint):
    code, out, err = chalkbox(capsys, "export", "evaluate", "--bundle", grade_bundle,
                              "--public-key", keypair[1], "--data", SCI_UA,
                              "--format", "semeval", "--json", "--limit", 50)
    assert code == 0, err
    bundle_result = json.loads(out)
    code, out, err = chalkbox(capsys, "train", "evaluate", "--model", tiny_checkpoint,
                              "--data", SCI_UA, "--format", "semeval", "--json",
                              "--limit", 50)
    assert code == 0, err
    checkpoint_result = json.loads(out)
    assert KEYS <= set(bundle_result)
    assert set(bundle_result) == set(checkpoint_result)
    assert bundle_result["n"] == checkpoint_result["n"] == 50
    assert sum(map(sum, bundle_result["confusion_matrix"])) == 50
    assert bundle_result["model"]["model_id"] == "grade-tiny"
    # the int8 bundle and its fp32 checkpoint mostly agree, even for a tiny model
    assert abs(bundle_result["accuracy"] - checkpoint_result["accuracy"]) <= 0.1
    code, out, err = chalkbox(capsys, "export", "evaluate", "--bundle", grade_bundle,
                              "--public-key", keypair[1], "--data", WIKIQA_DEV,
                              "--format", "wikiqa", "--limit", 5)
    assert code == 0, err
    assert "map" in out and "mrr" in out


@needs_data
@pytest.mark.parametrize("args, code, needle", [
    (["--data", "/nowhere/at/all", "--format", "semeval"], 1, "/nowhere/at/all not found"),
    (["--data", SCI_UA, "--format", "squad"], 2, "'squad' is not one of"),
    (["--data", SCI_UA, "--format", "wikiqa"], 1, "use --format semeval"),
    (["--data", WIKIQA_DEV, "--format", "semeval"], 1, "use --format wikiqa"),
])
def test_evaluate_errors_are_one_line_with_a_hint(capsys, grade_bundle, keypair, tiny_checkpoint,
                                                  args, code, needle):
    for command in (["export", "evaluate", "--bundle", grade_bundle, "--public-key", keypair[1]],
                    ["train", "evaluate", "--model", tiny_checkpoint]):
        exit_code, out, err = chalkbox(capsys, *command, *args)
        assert exit_code == code
        assert err.count("\n") == 1 and err.startswith("error: ") and "hint: " in err
        assert needle in err


@needs_data
def test_a_wrong_model_or_bundle_path_is_one_line(capsys, tmp_path, keypair):
    code, _, err = chalkbox(capsys, "train", "evaluate", "--model", tmp_path, "--data", SCI_UA,
                            "--format", "semeval")
    assert code == 1 and err.startswith("error: ") and "hint: " in err
    assert "not a Hugging Face checkpoint" in err and err.count("\n") == 1
    code, _, err = chalkbox(capsys, "export", "evaluate", "--bundle", tmp_path / "none",
                            "--public-key", keypair[1], "--data", SCI_UA, "--format", "semeval")
    assert code == 1 and "is not a directory" in err and "hint: " in err


@needs_data
def test_export_evaluate_needs_no_torch(grade_bundle, keypair):
    script = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from export.cli import export\n"
        f"r = CliRunner().invoke(export, ['evaluate', '--bundle', {str(grade_bundle)!r},"
        f" '--public-key', {str(keypair[1])!r}, '--data', {str(SCI_UA)!r},"
        " '--format', 'semeval', '--json', '--limit', '10'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert json.loads(r.output)['n'] == 10\n"
        "print(sorted(m for m in ('torch', 'transformers', 'optimum', 'training')"
        " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
