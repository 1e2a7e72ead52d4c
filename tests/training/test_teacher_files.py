"""Teacher-authored CSV/JSONL: good rows read, bad rows skipped and counted, bad files refused."""
import json

import pytest

from appliance.content import Exercise
from training.data import teacher_files
from training.data.labels import SourcedAnswer
from training.data.teacher_files import read_teacher_file
from training.errors import TrainingError

HEADER = "exercise_id,question,reference,answer,label\n"
Q, R = "What happens to water at 100 C?", "It boils and turns into steam."


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_csv_with_repeated_exercises_extra_columns_and_any_case_labels(tmp_path):
    path = write(tmp_path, "labels.csv",
                 "\ufeffExercise_ID,question,reference,answer,label,notes,subject\n"
                 f"boil-1,{Q},{R},it boils,Correct,checked,science\n"
                 "boil-1,,,it freezes,INCORRECT,,\n"
                 f'boil-1,{Q},"It becomes a gas, steam.","it\nevaporates",correct,,\n')
    data = read_teacher_file(path)
    assert data.exercises == [Exercise("boil-1", "science", "", Q, (R, "It becomes a gas, steam."))]
    assert data.answers == [SourcedAnswer("boil-1", "it boils", "correct", "teacher"),
                            SourcedAnswer("boil-1", "it freezes", "incorrect", "teacher"),
                            SourcedAnswer("boil-1", "it\nevaporates", "correct", "teacher")]
    report = data.report.to_dict()
    assert report["answers_read"] == 3 and report["answers_skipped"] == 0
    assert report["questions"] == 1 and report["source"] == str(path)


def test_bad_csv_rows_are_skipped_with_a_counted_reason(tmp_path):
    path = write(tmp_path, "labels.csv", HEADER + "\n".join([
        f"boil-1,{Q},{R},it boils,correct",             # line 2: good
        f"boil-1,{Q},{R},it melts,maybe",               # 3: unknown label
        "boil-1,{Q},too,many,fields,here",              # 4: wrong number of fields
        f'boil-1,{Q},{R},"bad "quote,correct',          # 5: not CSV
        f"bad id!,{Q},{R},it boils,correct",            # 6: bad exercise id
        "new-1,,,an answer,correct",                    # 7: no question on its first row
        "new-2,Why?,,an answer,correct",                # 8: no reference on its first row
        f"boil-1,Another question?,{R},hot,incorrect",  # 9: same id, other question
        "",                                             # a blank line: nothing
        f"boil-1,{'x' * 2001},{R},hot,incorrect",       # 11: oversize question
        "boil-1,,,it freezes,incorrect",                # 12: good
    ]) + "\n")
    data = read_teacher_file(path)
    assert [a.answer for a in data.answers] == ["it boils", "it freezes"]
    assert data.report.skipped == {"unknown_label": 1, "malformed_row": 2, "bad_exercise_id": 1,
                                   "missing_question": 1, "missing_reference": 1,
                                   "exercise_conflict": 1, "oversize_question": 1}
    assert data.report.first_skipped["malformed_row"] == "labels.csv line 4"
    assert data.report.first_skipped["oversize_question"] == "labels.csv line 11"
    assert data.report.items_skipped == 8


def test_jsonl_rows_and_their_faults(tmp_path):
    rows = [{"exercise_id": "boil-1", "question": Q, "reference": R, "answer": "it boils",
             "label": "correct", "comment": "ignored"},
            {"exercise_id": "boil-1", "answer": "it freezes", "label": "incorrect"},
            {"exercise_id": "boil-1", "answer": 42, "label": "incorrect"},   # not a string
            {"exercise_id": "boil-1", "label": "incorrect"},                 # no answer
            ["boil-1", "it boils", "correct"],                                # not an object
            {"exercise_id": "boil-1", "answer": "a\u2028b", "label": "correct"}]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{not json\n\n"
    data = read_teacher_file(write(tmp_path, "labels.jsonl", text))
    assert [a.answer for a in data.answers] == ["it boils", "it freezes", "a\u2028b"]
    assert data.report.skipped == {"malformed_row": 4}
    assert data.report.first_skipped["malformed_row"] == "labels.jsonl line 3"


@pytest.mark.parametrize("name, text, message", [
    ("empty.csv", "", "is empty"),
    ("blank.jsonl", "\n  \n", "is empty"),
    ("header.csv", HEADER, "a header but no rows"),
    ("columns.csv", "exercise_id,answer,label\nq,a,correct\n", "lacks column.*question"),
    ("none.csv", HEADER + "q1,Why?,Because.,it is,maybe\nq2,Why?,Because.,no,\n",
     r"no usable row: 2 skipped \(2 unknown_label\)"),
    ("labels.txt", HEADER, "expected .csv or .jsonl"),
])
def test_unusable_files_are_refused_naming_the_file(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(TrainingError, match=message) as caught:
        read_teacher_file(path)
    assert str(path) in caught.value.message
    assert caught.value.hint


def test_missing_not_utf8_and_oversize_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(TrainingError, match="not found"):
        read_teacher_file(tmp_path / "nowhere.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "q,Qué?,Sí.,está,correct\n").encode("latin-1"))
    with pytest.raises(TrainingError, match="not UTF-8") as caught:
        read_teacher_file(latin)
    assert "CSV UTF-8" in caught.value.hint
    big = write(tmp_path, "big.csv", HEADER + f"q,{Q},{R},it boils,correct\n" * 40)
    monkeypatch.setattr(teacher_files, "MAX_FILE_BYTES", 1024)
    with pytest.raises(TrainingError, match="over the .* MiB limit"):
        read_teacher_file(big)
