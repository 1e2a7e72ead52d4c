"""Label sources and precedence, and labelled examples from the box's records at the centre."""
import pytest

from appliance import teaching
from appliance.content import LabelledAnswer
from appliance.privacy import load_secret, pseudonym
from appliance.records import InteractionRecord
from appliance.sync.usb import export_to_stick
from training.data.labels import (SourcedAnswer, direct_exercise_id, examples_from_records,
                                  resolve_labels, sourced)
from training.errors import TrainingError
from training.ingest import ingest_path
from training.store import CentralStore
from conftest import demo_box_service


def s(text, label, source, exercise="e1"):
    return SourcedAnswer(exercise, text, label, source)


def test_answers_without_conflict_pass_and_weak_ones_only_when_asked():
    plain = [s("it boils", "correct", "teacher"), s("it melts", "incorrect", "dataset"),
             s("steam", "correct", "weak")]
    out, report = resolve_labels(plain)
    assert out == [LabelledAnswer("e1", "it boils", "correct"),
                   LabelledAnswer("e1", "it melts", "incorrect")]
    assert report.weak_not_used == 1 and report.used == {"teacher": 1, "dataset": 1}
    out, report = resolve_labels(plain, use_weak=True)
    assert len(out) == 3 and report.used["weak"] == 1 and report.weak_not_used == 0
    assert sourced([LabelledAnswer("e1", "a", "correct")], "dataset") == [s("a", "correct",
                                                                            "dataset")]
    with pytest.raises(TrainingError, match="label source"):
        sourced([], "rumour")


def test_the_highest_tier_decides_and_overruled_tiers_are_counted():
    clusters = [
        (s("it boils", "incorrect", "dataset"), s("It boils.", "correct", "teacher"),
         s("it boils", "incorrect", "weak")),
        (s("it melts", "correct", "weak", "e2"), s("It melts", "incorrect", "dataset", "e2")),
    ]
    out, report = resolve_labels([], clusters, use_weak=True)
    assert out == [LabelledAnswer("e1", "It boils.", "correct"),
                   LabelledAnswer("e2", "It melts", "incorrect")]
    assert report.conflicts == {"teacher_over_dataset": 1, "teacher_over_weak": 1,
                                "dataset_over_weak": 1}
    assert report.answers_dropped == 3


def test_weak_labels_in_a_conflict_are_left_out_unless_asked():
    cluster = (s("it melts", "correct", "weak"), s("It melts", "incorrect", "dataset"))
    out, report = resolve_labels([], [cluster])
    assert out == [LabelledAnswer("e1", "It melts", "incorrect")]
    assert report.conflicts == {} and report.weak_not_used == 1
    out, report = resolve_labels([], [(s("a", "correct", "weak"), s("A", "incorrect", "weak"))])
    assert out == [] and report.weak_not_used == 2


def test_majority_within_the_deciding_tier_and_a_tie_drops_the_answer():
    majority = (s("it boils", "correct", "dataset"), s("It boils", "incorrect", "dataset"),
                s("it boils!", "correct", "dataset"))
    tie = (s("it melts", "correct", "teacher", "e2"), s("It melts", "incorrect", "teacher", "e2"),
           s("it melts", "correct", "dataset", "e2"))
    out, report = resolve_labels([], [majority, tie])
    assert out == [LabelledAnswer("e1", "it boils", "correct")]
    assert report.conflicts == {"majority_dataset": 1, "tie_dropped_teacher": 1}
    assert report.to_dict()["answers_dropped_in_conflicts"] == 2 + 3


# --------------------------------------------------------------------------- from the box

QUESTION = "What happens to water when it is heated to 100 degrees Celsius at sea level?"
REFERENCE = "It boils and changes from a liquid into a gas called water vapour, or steam."


@pytest.fixture
def service(tmp_path):
    """A box with the demo content and no model: records are written as the service would."""
    return demo_box_service(tmp_path, "box-l", "school-l")


def graded(service, answer, prediction, nickname="ana", kind="answer", **fields):
    student = pseudonym(load_secret(service.config.secrets_dir), "c-1", nickname)
    service.roster.remember(student, "c-1", nickname)
    fields.setdefault("exercise_id", "sci-states-of-matter-1" if kind == "answer" else None)
    return service.outbox.append(InteractionRecord.create(
        box_id="box-l", school_id="school-l", kind=kind, class_id="c-1", student=student,
        texts={"question": QUESTION, "reference": REFERENCE, "answer": answer},
        model_id="grade-tiny", model_version="1.0.0", prediction=prediction, confidence=0.55,
        **fields))


def at_the_centre(service, tmp_path):
    """The box's records carried on a stick and ingested into a central store."""
    stick = tmp_path / "stick"
    stick.mkdir()
    export_to_stick(service.outbox, service.config, stick)
    with CentralStore(tmp_path / "centre.db") as store:
        ingest_path(store, stick)
        return list(store.records())


def test_teacher_labels_and_thumbs_become_examples(service, tmp_path):
    relabelled = graded(service, "it boils into steam", "incorrect")
    teaching.label_grade(service, relabelled.id, "incorrect")
    teaching.label_grade(service, relabelled.id, "correct")         # the teacher's final word
    thumbs_down = graded(service, "it turns to ice", "correct", nickname="ben")
    service.feedback(record_id=thumbs_down.id, feedback="down", class_id="c-1", nickname="ben")
    thumbs_up = graded(service, "it melts", "incorrect", nickname="cy")
    service.feedback(record_id=thumbs_up.id, feedback="up", class_id="c-1", nickname="cy")
    graded(service, "no idea", "incorrect", nickname="dee")          # unlabelled: not an example
    both = graded(service, "it evaporates, ben said so", "incorrect", nickname="eve")
    teaching.label_grade(service, both.id, "correct")
    service.feedback(record_id=both.id, feedback="up", class_id="c-1", nickname="eve")
    direct = graded(service, "vapour", "correct", kind="grade")       # a teacher trying it out
    teaching.label_grade(service, direct.id, "correct")

    data = examples_from_records(at_the_centre(service, tmp_path))

    ex = "sci-states-of-matter-1"
    direct_id = direct_exercise_id(QUESTION, REFERENCE)
    assert sorted(data.answers, key=lambda a: (a.answer, a.source)) == [
        SourcedAnswer(ex, "it boils into steam", "correct", "teacher"),
        SourcedAnswer(ex, "it evaporates, [name] said so", "correct", "teacher"),  # box scrubbed
        SourcedAnswer(ex, "it evaporates, [name] said so", "incorrect", "weak"),
        SourcedAnswer(ex, "it melts", "incorrect", "weak"),
        SourcedAnswer(ex, "it turns to ice", "incorrect", "weak"),
        SourcedAnswer(direct_id, "vapour", "correct", "teacher")]
    assert {e.id: (e.question, e.reference_answers) for e in data.exercises} == {
        ex: (QUESTION, (REFERENCE,)), direct_id: (QUESTION, (REFERENCE,))}
    assert data.report.skipped == {"unlabelled": 1, "superseded_teacher_label": 1}
    assert data.report.items_read == 6

    out, report = resolve_labels([], [
        [a for a in data.answers if a.answer.startswith("it evaporates")]], use_weak=True)
    assert out == [LabelledAnswer(ex, "it evaporates, [name] said so", "correct")]
    assert report.conflicts == {"teacher_over_weak": 1}


def test_a_teacher_label_counts_without_its_answer_record():
    answer = InteractionRecord.create(
        box_id="b", school_id="s", kind="answer", exercise_id="ex-1", prediction="correct",
        texts={"question": "Why?", "reference": "Because.", "answer": "just because"})
    label = InteractionRecord.create(box_id="b", school_id="s", kind="teacher_label",
                                     ref_id=answer.id, teacher_label="incorrect",
                                     exercise_id="ex-1", texts=dict(answer.texts))
    odd = InteractionRecord.create(box_id="b", school_id="s", kind="teacher_label",
                                   ref_id=answer.id, teacher_label="maybe", exercise_id="ex-1",
                                   texts=dict(answer.texts))
    data = examples_from_records([odd, label])
    assert data.answers == [SourcedAnswer("ex-1", "just because", "incorrect", "teacher")]
    assert data.report.skipped == {"unknown_label": 1}


def test_graded_texts_from_field_records_all_or_only_unlabelled():
    from training.data.labels import graded_texts

    def make(kind, answer="it melts", reference="Heat melts ice.", **fields):
        texts = {"question": "Why?", "answer": answer}
        if reference:
            texts["reference"] = reference
        return InteractionRecord.create(box_id="b", school_id="s", kind=kind, texts=texts,
                                        **fields)
    unlabelled = make("answer", "ice gets warm")
    labelled = make("answer", "it freezes")
    direct = make("grade", "a teacher's try")
    ignored = [make("answer", reference=""), make("question", reference="")]
    label = make("teacher_label", "it freezes", ref_id=labelled.id, teacher_label="incorrect")
    records = [label, direct, *ignored, labelled, unlabelled]  # any order
    texts = {r.id: ("Why?", "Heat melts ice.", r.texts["answer"])
             for r in (unlabelled, labelled, direct)}
    assert graded_texts(records) == [texts[r.id] for r in (unlabelled, labelled, direct)]
    assert graded_texts(records, kinds=("answer",), unlabelled_only=True) == [texts[unlabelled.id]]
