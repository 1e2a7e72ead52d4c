"""3-way (and 5-way) grading data: the label set is a setting, not a constant.

The shared SemEval data is 2-way only, so the 3-way split here is made from real SciEntsBank
files with every third incorrect answer relabelled "contradictory" and one answer marked
"non_domain" (a 5-way label the 3-way task does not know)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests_cli import run_chalkbox

SCI_TRAIN = Path(__file__).parents[3] / "shared/datasets/semeval2013-task7-2way/sciEntsBank/train"
THREE_WAY = ("correct", "contradictory", "incorrect")


@pytest.fixture(scope="module")
def three_way_split(tmp_path_factory) -> Path:
    if not SCI_TRAIN.is_dir():
        pytest.skip(f"{SCI_TRAIN} not found (../shared beside the checkout)")
    out = tmp_path_factory.mktemp("sci-3way")
    counter = iter(range(10**6))

    def relabel(match: re.Match) -> str:
        return 'accuracy="contradictory"' if next(counter) % 3 == 0 else match.group(0)

    for n, path in enumerate(sorted(SCI_TRAIN.glob("*.xml"))[:24]):
        text = re.sub(r'accuracy="incorrect"', relabel, path.read_text())
        if n == 0:
            text = text.replace('accuracy="correct"', 'accuracy="non_domain"', 1)
        (out / path.name).write_text(text)
    return out


def _skipped(dataset) -> dict:
    return dataset.report["sources"][0]["skipped"]


def test_the_label_set_decides_which_answers_are_read(three_way_split):
    from training.recipes import grading_dataset

    two_way = grading_dataset(three_way_split, "semeval", eval_fraction=0.2)
    three_way = grading_dataset(three_way_split, "semeval", eval_fraction=0.2, labels=THREE_WAY)
    contradictory = sum(a.label == "contradictory" for a in three_way.train + three_way.evaluation)
    assert contradictory > 20
    # the 2-way task skips (and counts) what it does not know; the 3-way task reads it
    assert _skipped(two_way)["unknown_label"] >= contradictory + 1
    assert _skipped(three_way)["unknown_label"] == 1  # the non_domain answer
    assert {a.label for a in three_way.train} == set(THREE_WAY)
    assert two_way.snapshot != three_way.snapshot


@pytest.mark.slow
def test_train_grade_with_three_labels_trains_evaluates_and_ships(three_way_split, tiny_base,
                                                                  keypair, tmp_path):
    from training.evaluate import evaluate_checkpoint

    out = tmp_path / "grader-3way"
    done = run_chalkbox("train", "grade", "--format", "semeval", "--data", three_way_split,
                        "--labels", ",".join(THREE_WAY), "--base-model", tiny_base,
                        "--epochs", "1", "--lr", "1e-3", "--max-length", "64",
                        "--eval-fraction", "0.2", "--keep-checkpoints", "0", "--no-report",
                        "--no-tensorboard", "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((out / "chalkbox.json").read_text())
    assert tuple(info["labels"]) == THREE_WAY and info["positive_label"] == "correct"
    assert len(json.loads((out / "config.json").read_text())["id2label"]) == 3
    report = json.loads((out / "data-report.json").read_text())
    assert report["sources"][0]["skipped"] == {"unknown_label": 1}

    result = evaluate_checkpoint(out, three_way_split, "semeval")
    assert set(result["per_class_f1"]) == set(THREE_WAY)
    matrix = result["confusion_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert sum(map(sum, matrix)) == result["n"]

    # the box takes a 3-label bundle as it is: export, sign, verify, evaluate without torch
    bundle = tmp_path / "bundle-3way"
    done = run_chalkbox("export", "build", "--model", out, "--out", bundle, "--key", keypair[0],
                        "--check-format", "semeval", "--check-data", three_way_split,
                        "--no-quantize", "--version", "1.0.0")
    assert done.returncode == 0, done.stderr[-2000:]
    done = run_chalkbox("export", "evaluate", "--bundle", bundle, "--public-key", keypair[1],
                        "--data", three_way_split, "--format", "semeval", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    on_box = json.loads(done.stdout)
    assert set(on_box["per_class_f1"]) == set(THREE_WAY)
    assert on_box["n"] == result["n"]
    assert abs(on_box["accuracy"] - result["accuracy"]) < 0.02


def test_a_bad_label_set_is_refused_with_a_hint(tmp_path):
    done = run_chalkbox("train", "grade", "--labels", "contradictory,incorrect",
                        "--out", tmp_path / "x")
    assert done.returncode == 2
    assert "'correct'" in done.stderr and "--labels" in done.stderr
