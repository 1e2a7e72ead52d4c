"""The SemEval-2013 Task 7 and WikiQA readers, on the real shared files and on broken copies."""
import collections
import shutil
from pathlib import Path

import pytest

from appliance.content import Exercise, LabelledAnswer
from training.data.semeval import parse_semeval_question, read_semeval
from training.data.wikiqa import QAGroup, match_pairs, read_wikiqa
from training.errors import TrainingError

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SEMEVAL = DATASETS / "semeval2013-task7-2way"
WIKIQA = DATASETS / "wikiqa"

pytestmark = pytest.mark.skipif(
    not (SEMEVAL.is_dir() and WIKIQA.is_dir()),
    reason=f"the shared datasets are not at {DATASETS} (see docs: ../shared/datasets)")

QUESTION = """<?xml version="1.0"?>
<question id="{qid}" module="EM">
  <questionText>Why does the bulb light?</questionText>
  <referenceAnswers>{refs}</referenceAnswers>
  <studentAnswers>
    <studentAnswer id="{qid}.1" accuracy="correct">The circuit is closed.</studentAnswer>
    <studentAnswer id="{qid}.2" accuracy="{label}">Because   it is\n on.</studentAnswer>
  </studentAnswers>
</question>
"""
REF = '<referenceAnswer id="r1">The bulb is in a closed path with the battery.</referenceAnswer>'


def labels_of(data):
    return collections.Counter(a.label for a in data.answers)


def test_scientsbank_unseen_questions_matches_the_readme():
    data = read_semeval(SEMEVAL / "sciEntsBank" / "test-unseen-questions")
    assert len(data.exercises) == 15
    assert len(data.answers) == 733
    assert labels_of(data) == {"correct": 301, "incorrect": 432}
    assert all(isinstance(e, Exercise) for e in data.exercises)
    assert all(isinstance(a, LabelledAnswer) for a in data.answers)
    assert {e.grade_band for e in data.exercises} == {"3-6"}
    assert all(e.subject.startswith("sciEntsBank/") for e in data.exercises)
    assert {e.id for e in data.exercises} >= {"EM_33b"}
    assert all(len(e.reference_answers) == 1 and e.question for e in data.exercises)
    assert {a.exercise_id for a in data.answers} == {e.id for e in data.exercises}
    report = data.report.to_dict()
    assert report["files_read"] == 15 and report["answers_read"] == 733
    assert report["skipped"] == {} and report["files_skipped"] == 0


def test_beetle_unseen_answers_keeps_every_reference_best_first():
    data = read_semeval(SEMEVAL / "beetle" / "test-unseen-answers")
    assert len(data.answers) == 439
    assert labels_of(data) == {"correct": 176, "incorrect": 263}
    assert {e.grade_band for e in data.exercises} == {"9-12"}
    by_id = {e.id: e for e in data.exercises}
    assert max(len(e.reference_answers) for e in data.exercises) > 10  # up to 14 in Beetle
    first = by_id["BULB_C_VOLTAGE_EXPLAIN_WHY1"]
    assert first.subject == "beetle/FaultFinding"
    assert first.reference_answers[0] == "Terminal 1 and the positive terminal are separated by the gap"
    assert len(first.reference_answers) == 5


def test_reference_categories_order_the_references():
    refs = "".join(f'<referenceAnswer category="{c}" id="a{i}">{c.lower()} answer</referenceAnswer>'
                   for i, c in enumerate(["KEYWORD", "MINIMAL", "BEST", "GOOD", "BEST"]))
    exercise, answers, report = parse_semeval_question(
        QUESTION.format(qid="Q1", refs=refs, label="incorrect"), where="q1.xml")
    assert exercise.reference_answers == ("best answer", "good answer", "minimal answer",
                                          "keyword answer")  # duplicates dropped
    assert answers[1] == LabelledAnswer("Q1", "Because it is on.", "incorrect")
    # no corpus on the path: Beetle's reference categories say which corpus it is
    assert exercise.grade_band == "9-12" and exercise.subject == "beetle/EM"
    assert report.items_read == 2


def test_bad_files_and_labels_are_skipped_and_counted(tmp_path):
    split = tmp_path / "sciEntsBank" / "broken"
    split.mkdir(parents=True)
    real = sorted((SEMEVAL / "sciEntsBank" / "test-unseen-questions").glob("*.xml"))[0]
    shutil.copy(real, split / "a-real.xml")
    (split / "b-malformed.xml").write_text("<question id='X'><questionText>oops</question")
    (split / "c-bad-label.xml").write_text(
        QUESTION.format(qid="Q2", refs=REF, label="partially_correct_incomplete"))
    (split / "d-no-reference.xml").write_text(QUESTION.format(qid="Q3", refs="", label="correct"))
    (split / "e-duplicate.xml").write_text(QUESTION.format(qid="Q2", refs=REF, label="correct"))
    (split / "f-not-a-question.xml").write_text("<answers/>")
    (split / "g-bad-id.xml").write_text(QUESTION.format(qid="a b", refs=REF, label="correct"))
    data = read_semeval(split)
    real_answers = read_semeval(real).answers
    assert [e.id for e in data.exercises] == [read_semeval(real).exercises[0].id, "Q2"]
    assert len(data.answers) == len(real_answers) + 1
    report = data.report.to_dict()
    assert report["skipped"] == {"malformed_xml": 1, "unknown_label": 1, "no_reference_answer": 1,
                                 "duplicate_question_id": 1, "not_a_question_file": 1,
                                 "bad_question_id": 1}
    assert report["files_read"] == 2 and report["files_skipped"] == 5
    assert report["answers_skipped"] == 1  # the duplicate file's answers are not counted
    assert report["first_skipped"]["malformed_xml"] == "b-malformed.xml"
    assert report["first_skipped"]["unknown_label"].startswith("c-bad-label.xml:Q2.2")


def only_subdirectories(root: Path) -> Path:
    (root / "split").mkdir()
    (root / "split" / "q.xml").write_text("<question/>")
    return root


@pytest.mark.parametrize("make, needle", [
    (lambda root: root, "holds no SemEval XML files"),
    (lambda root: root / "absent", "not found"),
    (only_subdirectories, "only in its subdirectories"),
])
def test_a_path_without_usable_files_is_a_clear_error(tmp_path, make, needle):
    with pytest.raises(TrainingError, match=needle) as caught:
        read_semeval(make(tmp_path))
    assert caught.value.hint


def test_only_broken_files_is_refused_with_the_reasons(tmp_path):
    (tmp_path / "bad.xml").write_text("not xml at all")
    with pytest.raises(TrainingError, match="malformed_xml 1"):
        read_semeval(tmp_path)


def test_wikiqa_dev_matches_the_readme():
    data = read_wikiqa(WIKIQA / "dev")
    assert len(data.groups) == 126
    assert sum(len(g.candidates) for g in data.groups) == 1130
    assert sum(label for g in data.groups for _, label in g.candidates) == 140
    first = data.groups[0]
    assert isinstance(first, QAGroup)
    qid, question, candidates = first
    assert question == "how big is bmc software in houston , tx"
    assert candidates[0][0].startswith("bmc software , inc. is an american company")
    pairs, labels = match_pairs(data.groups)
    assert len(pairs) == 1130 and labels.count("match") == 140
    assert data.report.to_dict()["pairs_read"] == 1130


def copy_wikiqa(tmp_path) -> Path:
    out = tmp_path / "dev"
    shutil.copytree(WIKIQA / "dev", out)
    return out


def test_wikiqa_files_of_different_lengths_are_refused_by_name(tmp_path):
    split = copy_wikiqa(tmp_path)
    lines = (split / "b.toks").read_text(encoding="utf-8").split("\n")
    (split / "b.toks").write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(TrainingError, match=r"a.toks 1130, b.toks 1128, sim.txt 1130, id.txt 1130"):
        read_wikiqa(split)


def test_wikiqa_bad_labels_are_skipped_and_missing_files_named(tmp_path):
    split = copy_wikiqa(tmp_path)
    sim = (split / "sim.txt").read_text().split("\n")
    sim[0], sim[1] = "2", "yes"
    (split / "sim.txt").write_text("\n".join(sim))
    data = read_wikiqa(split)
    assert sum(len(g.candidates) for g in data.groups) == 1128
    assert data.report.to_dict()["skipped"] == {"bad_label": 2}
    (split / "id.txt").unlink()
    with pytest.raises(TrainingError, match="lacks id.txt"):
        read_wikiqa(split)


def test_a_grader_trains_on_a_semeval_split(tiny_base, tmp_path):
    """`chalkbox train grade --format semeval`: held-out questions, a self-describing checkpoint."""
    import json

    from tests_cli import run_chalkbox

    split = DATASETS / "semeval2013-task7-2way" / "sciEntsBank" / "test-unseen-questions"
    done = run_chalkbox("train", "grade", "--data", split, "--format", "semeval", "--out",
                        tmp_path / "model", "--base-model", tiny_base, "--epochs", "1",
                        "--max-length", "64", "--batch-size", "32", "--eval-fraction", "0.2",
                        "--input-format", "question+reference|answer")
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "model" / "chalkbox.json").read_text())
    assert info["input_format"] == "question+reference|answer"
    assert info["metrics"]["validation"]["n"] > 50  # whole questions held out


def test_a_matcher_trains_on_wikiqa(tiny_base, tmp_path):
    import json

    from tests_cli import run_chalkbox

    done = run_chalkbox("train", "match", "--format", "wikiqa", "--data",
                        DATASETS / "wikiqa" / "dev", "--out", tmp_path / "m", "--base-model",
                        tiny_base, "--epochs", "1", "--max-length", "64", "--batch-size", "64")
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "m" / "chalkbox.json").read_text())
    assert info["task"] == "match" and info["labels"] == ["other", "match"]
