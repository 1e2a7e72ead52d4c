"""build_grading_dataset: every kind of source together, the report, splits and snapshots."""
import json
import random
from pathlib import Path

import pytest

from appliance.content import demo_content_dir
from appliance.records import InteractionRecord
from training.data.dataset import DataSource, build_grading_dataset
from training.store import CentralStore
from training.errors import TrainingError

SCIENTSBANK_TRAIN = (Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
                     / "semeval2013-task7-2way" / "sciEntsBank" / "train")

XML = """<?xml version="1.0"?>
<question id="{qid}" module="EM">
  <questionText>{question}</questionText>
  <referenceAnswers><referenceAnswer id="r1">{reference}</referenceAnswer></referenceAnswers>
  <studentAnswers>{answers}</studentAnswers>
</question>
"""
BULB_Q, BULB_R = "Why does the bulb light?", "The bulb is in a closed path with the battery."


def semeval_dir(tmp_path, questions=12, answers=10, seed=0):
    """A small SemEval split: ``questions`` files, ``answers`` labelled answers each."""
    rng = random.Random(seed)
    root = tmp_path / "semeval"
    root.mkdir()
    for q in range(questions):
        items = "".join(
            f'<studentAnswer id="Q{q}.{i}" accuracy="{rng.choice(["correct", "incorrect"])}">'
            f"answer {i} to question {q} with word{rng.randrange(1000)}</studentAnswer>"
            for i in range(answers))
        (root / f"Q{q}.xml").write_text(XML.format(qid=f"Q{q}", question=f"Question {q}?",
                                                   reference=f"Reference {q}.", answers=items))
    # one more question the teacher file below also labels
    (root / "BULB.xml").write_text(XML.format(
        qid="BULB", question=BULB_Q, reference=BULB_R,
        answers='<studentAnswer id="b1" accuracy="incorrect">The circuit is closed.</studentAnswer>'
                '<studentAnswer id="b2" accuracy="correct">It is on.</studentAnswer>'
                '<studentAnswer id="b3" accuracy="correct">   </studentAnswer>'))
    return root


def teacher_csv(tmp_path):
    path = tmp_path / "teacher.csv"
    path.write_text("exercise_id,question,reference,answer,label\n"
                    f"BULB,{BULB_Q},{BULB_R},the circuit is closed,correct\n"        # overrules
                    f"BULB,,,Email me: kid@example.org it is on,correct\n"
                    f"BULB,,,it is broken,maybe\n"                                   # skipped
                    f"sci-gravity-1,A different question?,Gravity.,it falls,correct\n",
                    encoding="utf-8")
    return path


def store_with_feedback(tmp_path):
    answer = InteractionRecord.create(
        box_id="box-1", school_id="s", kind="answer", exercise_id="BULB", prediction="correct",
        confidence=0.6, texts={"question": BULB_Q, "reference": BULB_R,
                               "answer": "the battery pushes current round"})
    thumbs = InteractionRecord.create(box_id="box-1", school_id="s", kind="feedback",
                                      ref_id=answer.id, feedback="down", exercise_id="BULB")
    path = tmp_path / "centre.db"
    with CentralStore(path) as store:
        store.add([answer, thumbs], source="test", box_id="box-1")
    return path


def test_every_kind_of_source_in_one_build(tmp_path):
    sources = (semeval_dir(tmp_path), demo_content_dir(), teacher_csv(tmp_path),
               store_with_feedback(tmp_path))
    data = build_grading_dataset(*sources, seed=3, eval_fraction=0.25)
    report = data.report
    assert [s["kind"] for s in report["sources"]] == ["semeval", "content", "teacher_file",
                                                      "store"]
    semeval, content, teacher, store = report["sources"]
    assert semeval["answers_read"] == 12 * 10 + 2 and semeval["skipped"] == {"empty_answer": 1}
    assert content["answers_read"] == 516
    assert teacher["answers_read"] == 3 and teacher["skipped"] == {"unknown_label": 1}
    # the demo content defines sci-gravity-1 with another question: the file's answer is out
    assert teacher["exercise_conflicts"] == {"exercises": ["sci-gravity-1"],
                                             "answers_skipped": 1}
    assert store["answers_read"] == 1
    assert report["cleaning"]["pii_scrubbed"] == 1
    # the teacher's label beats the dataset's for "The circuit is closed." (same answer)
    assert report["labels"]["conflicts"] == {"teacher_over_dataset": 1}
    assert report["labels"]["weak_not_used"] == 1
    everything = data.train + data.evaluation
    bulb = {a.answer: a.label for a in everything if a.exercise_id == "BULB"}
    assert bulb == {"the circuit is closed": "correct", "It is on.": "correct",
                    "Email me: [email] it is on": "correct"}
    assert len(everything) == 12 * 10 + 516 + 3
    # no question on both sides, the split and snapshot in the report
    assert not ({a.exercise_id for a in data.train} & {a.exercise_id for a in data.evaluation})
    assert report["split"]["evaluation"]["answers"] == len(data.evaluation)
    assert report["snapshot"] == data.snapshot and data.snapshot.startswith("ds-")
    assert {e.id for e in data.exercises} == {a.exercise_id for a in everything}
    json.dumps(report)  # the report is plain JSON, for the checkpoint and the logs

    weak = build_grading_dataset(*sources, seed=3, eval_fraction=0.25, use_weak=True)
    labels = {a.answer: a.label for a in weak.train + weak.evaluation}
    assert labels["the battery pushes current round"] == "incorrect"  # thumbs down on "correct"
    assert weak.snapshot != data.snapshot


def test_scientsbank_build_is_leak_free_stratified_and_repeatable():
    if not SCIENTSBANK_TRAIN.is_dir():
        pytest.skip(f"the shared datasets are not at {SCIENTSBANK_TRAIN}")
    data = build_grading_dataset(SCIENTSBANK_TRAIN, seed=42, eval_fraction=0.2)
    report = data.report
    assert report["sources"][0]["answers_read"] == 4969
    assert report["cleaning"]["dropped"] == {"exact_duplicate": 135, "near_duplicate": 4}
    assert report["labels"]["conflicts"] == {"majority_dataset": 2, "tie_dropped_dataset": 2}
    questions = {e.id: e.question for e in data.exercises}
    train_q = {questions[a.exercise_id] for a in data.train}
    assert not train_q & {questions[a.exercise_id] for a in data.evaluation}
    everything = data.train + data.evaluation

    def share(items):
        return sum(a.label == "correct" for a in items) / len(items)
    assert abs(share(data.evaluation) - share(everything)) < 0.02
    assert abs(len(data.evaluation) / len(everything) - 0.2) < 0.02
    again = build_grading_dataset(DataSource("semeval", SCIENTSBANK_TRAIN), seed=42,
                                  eval_fraction=0.2)
    assert (again.snapshot, again.train, again.evaluation) == (data.snapshot, data.train,
                                                               data.evaluation)
    assert build_grading_dataset(SCIENTSBANK_TRAIN, seed=43, eval_fraction=0.2).snapshot \
        != data.snapshot

    # a calibration set: answers of the training questions, never of the held-out ones
    calibrated = build_grading_dataset(SCIENTSBANK_TRAIN, seed=42, eval_fraction=0.2,
                                       calibration_fraction=0.1)
    assert calibrated.evaluation == data.evaluation
    assert sorted(calibrated.train + calibrated.calibration, key=repr) == sorted(data.train,
                                                                                 key=repr)
    assert abs(len(calibrated.calibration) / len(data.train) - 0.1) < 0.01
    assert {questions[a.exercise_id] for a in calibrated.calibration} <= train_q
    assert abs(share(calibrated.calibration) - share(data.train)) < 0.01
    assert calibrated.report["split"]["calibration"]["answers"] == len(calibrated.calibration)
    assert calibrated.snapshot != data.snapshot


def test_sources_in_another_order_make_the_same_snapshot(tmp_path):
    a, b = semeval_dir(tmp_path), demo_content_dir()
    assert (build_grading_dataset(a, b, seed=1).snapshot
            == build_grading_dataset(b, a, seed=1).snapshot)


def test_source_kinds_are_detected_or_refused(tmp_path):
    assert DataSource.detect(demo_content_dir()).kind == "content"
    assert DataSource.detect(semeval_dir(tmp_path)).kind == "semeval"
    assert DataSource.detect(teacher_csv(tmp_path)).kind == "teacher_file"
    assert DataSource.detect(store_with_feedback(tmp_path)).kind == "store"
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="cannot tell"):
        DataSource.detect(tmp_path / "empty")
    with pytest.raises(TrainingError, match="not found"):
        DataSource.detect(tmp_path / "nowhere")
    with pytest.raises(TrainingError, match="unknown data source kind"):
        DataSource("spreadsheet", tmp_path)
    with pytest.raises(TrainingError, match="central store .* not found"):
        build_grading_dataset(DataSource("store", tmp_path / "none.db"))
    assert not (tmp_path / "none.db").exists()  # looking did not create a store


def test_nothing_usable_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="no training data"):
        build_grading_dataset()
    only_weak = store_with_feedback(tmp_path)
    with pytest.raises(TrainingError, match="no labelled answer is left") as caught:
        build_grading_dataset(only_weak)
    assert "use_weak" in caught.value.hint
    assert len(build_grading_dataset(only_weak, use_weak=True).train) == 1
