from collections import Counter

import pytest

from appliance.content import (demo_content_dir, read_answers, read_exercises, read_faq,
                               read_labelled_content)
from appliance.errors import FormatError


def test_demo_content_meets_the_brief():
    exercises, answers = read_labelled_content(demo_content_dir())
    faq = read_faq(demo_content_dir() / "faq.csv")
    assert len(exercises) >= 30
    assert len({e.subject for e in exercises}) >= 4
    assert len({e.grade_band for e in exercises}) >= 3
    per_exercise = Counter(a.exercise_id for a in answers)
    assert min(per_exercise[e.id] for e in exercises) >= 8
    labels = Counter((a.exercise_id, a.label) for a in answers)
    assert all(labels[(e.id, "correct")] and labels[(e.id, "incorrect")] for e in exercises)
    assert len(faq) >= 60


def test_repeated_id_adds_a_reference_answer():
    text = ("id,subject,grade_band,question,reference_answer\n"
            "e1,science,3-5,Why?,Because A.\n"
            "e1,science,3-5,Why?,Because B.\n")
    [exercise] = read_exercises(text)
    assert exercise.reference_answers == ("Because A.", "Because B.")


@pytest.mark.parametrize("text, needle", [
    ("id,subject,question\n", "lacks column"),
    ("id,subject,grade_band,question,reference_answer\n", "no exercises"),
    ("id,subject,grade_band,question,reference_answer\nbad id,s,3-5,Q,R\n", "line 2"),
    ("id,subject,grade_band,question,reference_answer\ne1,s,3-5,,R\n", "question"),
    ("id,subject,grade_band,question,reference_answer\ne1,s,3-5,Q\n", "wrong number"),
])
def test_bad_exercise_files_are_refused_with_the_line(text, needle):
    with pytest.raises(FormatError, match=needle):
        read_exercises(text)


def test_answers_with_unknown_label_or_exercise_are_refused():
    with pytest.raises(FormatError, match="label"):
        read_answers("exercise_id,answer,label\ne1,yes,maybe\n", ["e1"])
    with pytest.raises(FormatError, match="unknown exercise_id"):
        read_answers("exercise_id,answer,label\ne2,yes,correct\n", ["e1"])
