"""Distillation: the student's copied layers, the loss by hand, ensembles, unlabelled data, the
CLI's checkpoint (and its bundle), and a real run that moves the student towards the teacher."""
import math
import re
import shutil

import numpy as np
import pytest

from appliance.content import demo_content_dir, read_labelled_content
from appliance.inference.engine import softmax
from appliance.inference.pairs import labelled_grade_pairs
from export.checkpoint import CheckpointInfo, read_checkpoint_info
from training.distill import (
    DistillConfig,
    _fresh_unlabelled,
    combine_logits,
    distill,
    distillation_loss,
    evenly_spaced_layers,
    hidden_state_loss,
    make_student,
    teacher_logits,
)
from training.distill_cli import read_unlabelled_pairs
from training.errors import TrainingError
from training.evaluate import CheckpointModel

PAIRS = [("Plants make food from sunlight.", "they use light to make food"),
         ("Water boils at 100 degrees.", "it freezes"),
         ("A magnet attracts iron.", "magnets pull iron and steel things towards them, yes"),
         ("Heat flows from hot to cold.", "cold"),
         ("The moon reflects the sun's light.", "the moon makes its own light")]


@pytest.fixture(scope="module")
def four_layer_teacher(tmp_path_factory):
    """An untrained 4-layer classifier checkpoint: enough to see which layers a cut keeps."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from helpers import build_tiny_bert

    base = build_tiny_bert(tmp_path_factory.mktemp("base4"), layers=4, seed=3)
    out = tmp_path_factory.mktemp("teacher4")
    AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "incorrect", 1: "correct"},
        label2id={"incorrect": 0, "correct": 1}).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    CheckpointInfo(max_length=48, model_id="grade-four").save(out)
    return out


@pytest.fixture(scope="module")
def demo_pairs():
    exercises, answers = read_labelled_content(demo_content_dir())
    return labelled_grade_pairs(exercises, answers, "reference|answer")


def _weights(model_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    return model, model.state_dict()


def test_evenly_spaced_layers_are_distilbert_style():
    assert evenly_spaced_layers(6, 3) == (0, 2, 4)
    assert evenly_spaced_layers(12, 6) == (0, 2, 4, 6, 8, 10)
    assert evenly_spaced_layers(6, 2) == (0, 3)
    assert evenly_spaced_layers(4, 4) == (0, 1, 2, 3)
    with pytest.raises(TrainingError, match="cannot keep 7"):
        evenly_spaced_layers(6, 7)


@pytest.mark.parametrize("settings, needle", [
    ({"teachers": ()}, "at least one teacher"),
    ({"layers": (0, 2), "num_layers": 2}, "not layers and num_layers"),
    ({"layers": (2, 0)}, "increasing order"),
    ({"alpha": 1.5}, "alpha"),
    ({"temperature": 0}, "temperature"),
    ({"ensemble": "median"}, "ensemble"),
    ({"max_length": 4}, "max_length"),
])
def test_bad_settings_are_refused(tmp_path, settings, needle):
    with pytest.raises(TrainingError, match=needle):
        DistillConfig(**{"output_dir": tmp_path, "teachers": (tmp_path,), **settings})


def test_make_student_copies_the_chosen_layers(four_layer_teacher, tmp_path):
    make_student(four_layer_teacher, [1, 3], tmp_path / "student")
    teacher, teacher_state = _weights(four_layer_teacher)
    student, student_state = _weights(tmp_path / "student")
    assert student.config.num_hidden_layers == 2
    compared = 0
    for key, value in student_state.items():
        layer = re.match(r"(bert\.encoder\.layer\.)(\d+)\.(.*)", key)
        source = f"{layer[1]}{(1, 3)[int(layer[2])]}.{layer[3]}" if layer else key
        assert np.array_equal(value.numpy(), teacher_state[source].numpy()), key
        compared += 1
    assert compared == len(student_state) and "classifier.weight" in student_state
    # layer 0 was dropped: the student's first layer is the teacher's second, not its first
    assert not np.array_equal(student_state["bert.encoder.layer.0.output.dense.weight"].numpy(),
                              teacher_state["bert.encoder.layer.0.output.dense.weight"].numpy())
    info, teacher_info = read_checkpoint_info(tmp_path / "student"), \
        read_checkpoint_info(four_layer_teacher)
    assert (info.task, info.labels, info.input_format, info.max_length) == \
        (teacher_info.task, teacher_info.labels, teacher_info.input_format, 48)
    assert info.metrics["distillation"]["parent"] == str(four_layer_teacher)


def test_a_student_keeping_every_layer_is_the_teacher(four_layer_teacher, tmp_path):
    make_student(four_layer_teacher, [0, 1, 2, 3], tmp_path / "all")
    np.testing.assert_allclose(CheckpointModel(tmp_path / "all", "cpu").logits(PAIRS),
                               CheckpointModel(four_layer_teacher, "cpu").logits(PAIRS),
                               atol=1e-5)
    with pytest.raises(TrainingError, match="do not exist"):
        make_student(four_layer_teacher, [0, 4], tmp_path / "bad")


def _log_softmax(row, t=1.0):
    scaled = [x / t for x in row]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(x - top) for x in scaled))
    return [x - norm for x in scaled]


def _kl(teacher_row, student_row, t):
    log_p, log_q = _log_softmax(teacher_row, t), _log_softmax(student_row, t)
    return sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q))


def test_loss_is_alpha_ce_plus_t2_kl_by_hand():
    import torch

    student = [[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    teacher = [[1.0, 0.0], [0.0, 0.0], [3.0, -1.0]]
    alpha, t = 0.3, 2.0
    ce = -(_log_softmax(student[0])[0] + _log_softmax(student[1])[1] +
           _log_softmax(student[2])[0]) / 3
    kl = sum(_kl(a, b, t) for a, b in zip(teacher, student)) / 3
    loss = distillation_loss(torch.tensor(student), torch.tensor([0, 1, 0]), torch.tensor(teacher),
                             alpha=alpha, temperature=t)
    assert loss.item() == pytest.approx(alpha * ce + (1 - alpha) * t * t * kl, rel=1e-6)
    assert ce > 0 and kl > 0    # both terms really count


def test_unlabelled_rows_meet_only_the_kd_term():
    import torch

    student = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, -1.0]])
    alpha, t = 0.5, 3.0
    ce = -_log_softmax([2.0, 0.0])[0]                       # only row 0 is labelled
    kl = sum(_kl(a, b, t) for a, b in zip(teacher.tolist(), student.tolist())) / 3
    loss = distillation_loss(student, torch.tensor([0, -100, -100]), teacher, alpha=alpha,
                             temperature=t)
    assert loss.item() == pytest.approx(alpha * ce + (1 - alpha) * t * t * kl, rel=1e-6)
    # an unlabelled row's gradient is exactly its KD gradient
    loss.backward()
    kd_only = student.detach().clone().requires_grad_(True)
    ((1 - alpha) * distillation_loss(kd_only, torch.tensor([-100, -100, -100]), teacher,
                                     alpha=0.0, temperature=t)).backward()
    np.testing.assert_allclose(student.grad[1:].numpy(), kd_only.grad[1:].numpy(), atol=1e-7)
    assert not np.allclose(student.grad[0].numpy(), kd_only.grad[0].numpy())


def test_hidden_state_loss_compares_directions():
    import torch

    a = torch.tensor([[[3.0, 0.0], [0.0, 2.0]]])
    assert hidden_state_loss(a, a * 5).item() == pytest.approx(0.0, abs=1e-7)
    assert hidden_state_loss(a, a.flip(-1)).item() == pytest.approx(2.0)  # orthogonal unit vectors


def test_an_ensemble_averages_logits_or_probabilities(tiny_checkpoint, tmp_path):
    a = np.array([[2.0, -1.0], [0.5, 0.5]])
    b = np.array([[0.0, 1.0], [-3.0, 1.0]])
    np.testing.assert_allclose(combine_logits([a, b]), (a + b) / 2, rtol=1e-6)
    mixed = combine_logits([a, b], ensemble="probabilities", temperature=2.0)
    np.testing.assert_allclose(softmax(mixed, 2.0), (softmax(a, 2.0) + softmax(b, 2.0)) / 2,
                               rtol=1e-5)
    # two real teachers, batched by length in threes: the mean of what each one says alone
    second = make_student(tiny_checkpoint, [1], tmp_path / "second")
    alone = [CheckpointModel(d, "cpu").logits(PAIRS) for d in (tiny_checkpoint, second)]
    assert not np.allclose(alone[0], alone[1], atol=1e-3)
    together = teacher_logits([tiny_checkpoint, second], PAIRS, batch_size=3)
    np.testing.assert_allclose(together, (alone[0] + alone[1]) / 2, atol=1e-5)


def test_unlabelled_pairs_are_new_pairs_only():
    known, held_out = [("r", "a")], [("r", "b")]
    fresh = _fresh_unlabelled([("r", "a"), ("r", "c"), ("r", "b"), ("r", "c"), ("r", "d")],
                              known, held_out)
    assert fresh == [("r", "c"), ("r", "d")]


def test_unlabelled_pairs_from_content_and_field_records(tmp_path):
    from appliance.records import InteractionRecord
    from appliance.syncbundle import write_sync_bundle

    content = tmp_path / "content"
    content.mkdir()
    shutil.copy(demo_content_dir() / "exercises.csv", content / "exercises.csv")
    (content / "answers.csv").write_text("exercise_id,answer\nsci-states-of-matter-1,it boils\n"
                                         "sci-states-of-matter-1,\n")
    pairs = read_unlabelled_pairs(content, "reference|answer")
    assert pairs == [("It boils and changes from a liquid into a gas called water vapour, or "
                      "steam.", "it boils")]

    common = {"box_id": "box-1", "school_id": "school-1"}
    records = [InteractionRecord.create(kind="answer", texts={"question": "Q?", "reference": "R",
                                                              "answer": "A"}, **common),
               InteractionRecord.create(kind="grade", teacher_label="correct",
                                        texts={"question": "Q2?", "reference": "R2",
                                                "answer": "A2"}, **common),
               InteractionRecord.create(kind="question", texts={"question": "Why?"}, **common)]
    bundle = write_sync_bundle(records, tmp_path / "stick", box_id="box-1", school_id="school-1")
    assert read_unlabelled_pairs(bundle, "question+reference|answer") == [("Q? | R", "A"),
                                                                          ("Q2? | R2", "A2")]
    with pytest.raises(TrainingError, match="cannot tell"):
        read_unlabelled_pairs(tmp_path / "stick" / "..", "reference|answer")


def _kd_gap(student_dir, target_logits, pairs, t):
    """Mean KL(target_T || student_T) over ``pairs``: what an alpha-0 distillation minimises."""
    p = softmax(target_logits, t)
    q = softmax(CheckpointModel(student_dir, "cpu").logits(pairs), t)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


@pytest.mark.slow
def test_distilling_moves_the_student_towards_the_teacher(tiny_checkpoint, demo_pairs, tmp_path):
    pairs, labels = demo_pairs
    unlabelled = [(r, a + " maybe") for r, a in pairs[:60]]
    second = make_student(tiny_checkpoint, [1], tmp_path / "second")
    teachers = (tiny_checkpoint, second)
    config = DistillConfig(output_dir=tmp_path / "student", teachers=teachers, layers=(0,),
                           alpha=0.0, temperature=2.0, ensemble="probabilities",
                           hidden_loss_weight=0.5, epochs=3, learning_rate=2e-3, batch_size=32,
                           max_length=40, model_id="grade-student")
    metrics = distill(config, (pairs[:200], labels[:200]), (pairs[400:], labels[400:]),
                      unlabelled)
    assert {"accuracy", "teacher_accuracy", "agreement_with_teacher", "accuracy_retained"} \
        <= set(metrics) and metrics["n"] == len(pairs) - 400
    # the figures are the saved student's and the ensemble's, pair by pair in order
    truth = np.array([label == "correct" for label in labels[400:]])
    student_pred = CheckpointModel(tmp_path / "student", "cpu").logits(pairs[400:]).argmax(1) == 1
    teacher_pred = teacher_logits(teachers, pairs[400:], ensemble="probabilities",
                                  temperature=2.0).argmax(1) == 1
    assert metrics["accuracy"] == pytest.approx(np.mean(student_pred == truth))
    assert metrics["teacher_accuracy"] == pytest.approx(np.mean(teacher_pred == truth))
    assert metrics["agreement_with_teacher"] == pytest.approx(np.mean(student_pred == teacher_pred))
    info = read_checkpoint_info(tmp_path / "student")
    assert info.metrics["validation"] == metrics
    assert info.max_length == 40 and info.model_id == "grade-student"
    assert info.metrics["distillation"]["unlabelled_pairs"] == 60
    assert info.metrics["distillation"]["teachers"] == [str(t) for t in teachers]
    # alpha 0: all it learned is the ensemble's soft grades; it is much closer to them than
    # the same cut before training
    target = teacher_logits(teachers, pairs[:200], ensemble="probabilities", temperature=2.0)
    untrained = make_student(tiny_checkpoint, [0], tmp_path / "untrained")
    after, before = (_kd_gap(tmp_path / "student", target, pairs[:200], 2.0),
                     _kd_gap(untrained, target, pairs[:200], 2.0))
    assert after < 0.7 * before


def test_hidden_loss_needs_the_teachers_hidden_size(tiny_checkpoint, demo_pairs, tmp_path):
    from helpers import build_tiny_bert

    narrow = build_tiny_bert(tmp_path / "narrow", hidden=16, layers=1)
    config = DistillConfig(output_dir=tmp_path / "out", teachers=(tiny_checkpoint,),
                           student_base=str(narrow), hidden_loss_weight=1.0)
    with pytest.raises(TrainingError, match="hidden size"):
        distill(config, (demo_pairs[0][:8], demo_pairs[1][:8]))


def chalkbox(capsys, *args):
    from appliance.cli import main

    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.slow
def test_the_cli_writes_a_student_that_exports_as_a_bundle(capsys, tiny_checkpoint, tmp_path,
                                                          build_request_for):
    from export.build import build_bundle

    out = tmp_path / "student"
    code, stdout, err = chalkbox(capsys, "train", "distill", "--teacher", tiny_checkpoint,
                                 "--num-layers", 1, "--epochs", 2, "--lr", 1e-3,
                                 "--batch-size", 32, "--unlabelled", demo_content_dir(),
                                 "--calibration-fraction", 0.2, "--out", out)
    assert code == 0, err
    assert "student written to" in stdout
    teacher, student = read_checkpoint_info(tiny_checkpoint), read_checkpoint_info(out)
    for field in ("task", "labels", "positive_label", "input_format", "max_length", "model_id"):
        assert getattr(student, field) == getattr(teacher, field), field
    assert student.base_model == str(tiny_checkpoint)
    assert student.metrics["distillation"]["parent"] == str(tiny_checkpoint)
    assert student.metrics["distillation"]["layers"] == [0]
    assert student.metrics["validation"]["n"] > 0
    # the student's temperature is fitted on answers held out of the training questions
    calibration = student.metrics["calibration"]
    assert calibration["n"] > 0 and calibration["on"].startswith("held-out answers")
    assert student.temperature == calibration["temperature"] == \
        student.metrics["validation"]["temperature"]
    # demo content is both --data and --unlabelled: only the pairs cleaning changed or dropped
    # (duplicates, whitespace) are new to the student; none it was taught with a gold label
    from appliance.inference.pairs import labelled_grade_pairs
    from training.distill_cli import read_unlabelled_pairs
    from training.recipes import grading_dataset

    dataset = grading_dataset(None, "content", eval_fraction=0.15, seed=42)
    taught = set(labelled_grade_pairs(dataset.exercises, dataset.train + dataset.evaluation,
                                      teacher.input_format)[0])
    raw = set(read_unlabelled_pairs(demo_content_dir(), teacher.input_format))
    assert student.metrics["distillation"]["unlabelled_pairs"] == len(raw - taught) < len(raw) / 10
    model = CheckpointModel(out, "cpu")
    assert model.model.config.num_hidden_layers == 1
    bundle = tmp_path / "bundle"
    build_bundle(build_request_for(bundle, model_dir=out, version="1.0.0"))
    assert (bundle / "manifest.sig").is_file()


def test_cli_refuses_two_ways_to_make_a_student(capsys, tiny_checkpoint, tmp_path):
    code, _, err = chalkbox(capsys, "train", "distill", "--teacher", tiny_checkpoint,
                            "--layers", "0", "--num-layers", 1, "--out", tmp_path / "x")
    assert code == 1 and err.startswith("error: ") and "hint: " in err
    assert "not layers and num_layers" in err
    code, _, err = chalkbox(capsys, "train", "distill", "--teacher", tiny_checkpoint,
                            "--layers", "0,two", "--out", tmp_path / "x")
    assert code == 2 and "expected teacher layer indices" in err
