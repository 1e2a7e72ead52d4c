"""Teacher-side operations (appliance.teaching) and sign-in pieces (web.auth), without a server.

A box here has content but no model: every record is written directly, so these
tests need no training and run in seconds.
"""
import datetime as dt
import os
import re
import stat

import pytest

from appliance import teaching
from appliance.content import Exercise
from appliance.errors import FormatError, NotFound
from appliance.ids import new_id
from appliance.records import InteractionRecord
from appliance.store.teachers import TeacherAccounts
from appliance.web import auth
from conftest import demo_box_service

EXERCISES_HEADER = "id,subject,grade_band,question,reference_answer\n"


@pytest.fixture
def service(tmp_path):
    return demo_box_service(tmp_path, "box-t", "school-t")


def add(service, **fields):
    fields.setdefault("texts", {"question": "Why does ice melt?", "answer": "it gets warm",
                                "reference": "Heat turns it to water."})
    defaults = {"class_id": "c-1", "student": "s-" + "a" * 24, "exercise_id": "sci-1",
                "model_id": "grade-tiny", "model_version": "1.0.0"}
    return service.outbox.append(InteractionRecord.create(
        box_id="box-t", school_id="school-t", **{**defaults, **fields}))


def test_low_confidence_answer_is_queued_until_labelled(service):
    unsure = add(service, kind="answer", prediction="correct", confidence=0.55)
    add(service, kind="answer", prediction="correct", confidence=0.95)  # sure: not queued
    assert [r.id for r in teaching.review_queue(service).grades] == [unsure.id]

    label = teaching.label_grade(service, unsure.id, "incorrect")
    assert label.kind == "teacher_label" and label.ref_id == unsure.id
    assert label.teacher_label == "incorrect" and label.texts == unsure.texts
    assert (label.model_id, label.model_version) == ("grade-tiny", "1.0.0")
    assert label.student == unsure.student  # an opt-out drops the label with the answer
    assert teaching.review_queue(service).grades == []
    # a double click stores one label; a change of mind stores a new one
    assert teaching.label_grade(service, unsure.id, "incorrect").id == label.id
    assert teaching.label_grade(service, unsure.id, "correct").id != label.id
    labels = [r for r in service.outbox.records() if r.kind == "teacher_label"]
    assert [r.teacher_label for r in labels] == ["incorrect", "correct"]


def test_unknown_records_and_labels_are_refused(service):
    question = add(service, kind="question", texts={"question": "What is a volcano?"})
    for record_id in (new_id(), "nope", "x" * 500, question.id):  # a question has no grade
        with pytest.raises(NotFound):
            teaching.label_grade(service, record_id, "correct")
    answer = add(service, kind="answer", prediction="correct", confidence=0.5)
    with pytest.raises(FormatError):
        teaching.label_grade(service, answer.id, "maybe")


def test_answering_a_forwarded_question_adds_it_to_the_faq(service):
    exercises_before = service.content.exercises()
    faq_before = service.content.faq()
    question = add(service, kind="question", subject="science", grade_band="5-6",
                   texts={"question": "Why is the sky blue?"})
    matched = add(service, kind="question", prediction="faq-1", confidence=0.9,
                  texts={"question": "What is rain?", "answer": "Water falling."})
    queue = teaching.review_queue(service)
    assert [r.id for r in queue.questions] == [question.id]
    assert matched.id not in [r.id for r in queue.questions]

    record, entry = teaching.answer_question(service, question.id, "Light scatters.",
                                             "science", "5-6")
    assert record.kind == "teacher_answer" and record.ref_id == question.id
    assert record.texts == {"question": "Why is the sky blue?", "answer": "Light scatters."}
    assert re.fullmatch(r"faq-t-[0-9a-f]{12}", entry.id)
    assert service.content.faq() == faq_before + [entry]
    assert service.content.exercises() == exercises_before
    assert teaching.review_queue(service).questions == []
    # answering again replaces the same FAQ entry, and records nothing new
    again, entry2 = teaching.answer_question(service, question.id, "Rayleigh.", "science", "5-6")
    assert entry2.id == entry.id and again.id == record.id
    assert [f.answer for f in service.content.faq() if f.id == entry.id] == ["Rayleigh."]


def test_todays_activity_per_class(service):
    add(service, kind="answer", prediction="correct", confidence=0.9)
    wrong = add(service, kind="answer", prediction="incorrect", confidence=0.9)
    add(service, kind="answer", class_id="c-2", student="s-" + "b" * 24,
        prediction="incorrect", confidence=0.9)
    add(service, kind="answer", prediction="correct", confidence=0.9,
        created_at="2020-01-01T08:00:00.000Z")  # not today
    teaching.label_grade(service, wrong.id, "correct")  # the teacher's label counts
    activity = {a.class_id: a for a in teaching.today_activity(service)}
    assert (activity["c-1"].answers, activity["c-1"].correct, len(activity["c-1"].students)) \
        == (2, 2, 1)
    assert activity["c-2"].share_correct == 0.0
    assert teaching.today_activity(service, dt.date(2020, 1, 2)) == []


def test_content_edits(service):
    editor = teaching.ContentEditor(service)
    count = len(editor.exercises())
    new = Exercise("new-1", "science", "5-6", "Why do we sweat?", ("To cool down.",))
    editor.add_exercise(new)
    assert service.content.exercise("new-1") == new
    with pytest.raises(FormatError, match="already exists"):
        editor.add_exercise(new)
    editor.delete_exercise("new-1")
    assert len(editor.exercises()) == count
    with pytest.raises(NotFound):
        editor.delete_exercise("new-1")
    faq_id = editor.faq()[0].id
    editor.delete_faq(faq_id)
    assert faq_id not in [f.id for f in editor.faq()]


def test_csv_import_merges_or_replaces_and_a_bad_file_changes_nothing(service):
    editor = teaching.ContentEditor(service)
    before = service.config.content_path.read_bytes()
    bad = (EXERCISES_HEADER + "ok-1,science,5-6,What melts?,Ice\n" + "ok-2,science,5-6,,Ice\n")
    with pytest.raises(FormatError) as info:
        editor.import_csv("exercises", bad.encode())
    assert info.value.message.startswith("exercises.csv line 3:") and info.value.field == "question"
    with pytest.raises(FormatError, match="not UTF-8"):
        editor.import_csv("faq", "id,subject\n".encode("utf-16"))
    with pytest.raises(FormatError, match="lacks column"):
        editor.import_csv("faq", b"id,question\nx,y\n")
    assert service.config.content_path.read_bytes() == before

    count = len(editor.exercises())
    good = EXERCISES_HEADER + "ok-1,science,5-6,What melts?,Ice\nok-1,science,5-6,What melts?,Snow\n"
    assert editor.import_csv("exercises", good.encode("utf-8-sig")) == 1
    assert len(editor.exercises()) == count + 1
    assert service.content.exercise("ok-1").reference_answers == ("Ice", "Snow")
    editor.import_csv("exercises", good.encode(), mode="replace")
    assert [e.id for e in editor.exercises()] == ["ok-1"]
    assert len(editor.faq()) > 0  # importing exercises keeps the FAQ


def test_usb_sync_only_to_a_mounted_stick_and_only_with_this_box_queue(service, tmp_path,
                                                                      monkeypatch):
    import dataclasses

    media = tmp_path / "media"
    (media / "STICK").mkdir(parents=True)
    config = dataclasses.replace(service.config, usb_mount_root=str(media))
    with pytest.raises(NotFound):
        teaching.enqueue_usb_sync(config, "/etc")
    monkeypatch.setenv("CHALKBOX_DATA_DIR", str(tmp_path / "another-box"))
    assert teaching.worker_tasks(config) is None
    assert teaching.enqueue_usb_sync(config, str(media / "STICK")) is None
    assert "unavailable" in teaching.usb_task_result(config, "some-id")


def test_web_key_is_made_once_private_and_shared(tmp_path):
    secrets_dir = tmp_path / "secrets"
    key = auth.load_or_create_key(secrets_dir)
    path = secrets_dir / auth.KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_or_create_key(secrets_dir) == key  # every worker, every restart
    assert [p.name for p in secrets_dir.iterdir()] == [auth.KEY_FILE]  # no temp files left
    path.write_bytes(b"short")
    fresh = auth.load_or_create_key(secrets_dir)
    assert len(fresh) == 32 and fresh != key


def test_login_limiter():
    now = [1000.0]
    limiter = auth.LoginLimiter(per_user=5, per_address=8, window_s=300, clock=lambda: now[0])
    for _ in range(5):
        assert limiter.retry_after("Ms-Okafor", "10.0.0.2") == 0
        limiter.failed("ms-okafor", "10.0.0.2")
    assert 290 < limiter.retry_after("MS-OKAFOR", "10.0.0.2") <= 301
    assert limiter.retry_after("ms-okafor", "10.0.0.3") == 0  # another tablet
    for name in ("a", "b", "c"):  # guessing across usernames hits the address limit
        limiter.failed(name, "10.0.0.2")
    assert limiter.retry_after("d", "10.0.0.2") > 0
    now[0] += 301
    assert limiter.retry_after("ms-okafor", "10.0.0.2") == 0
    limiter.failed("ms-okafor", "10.0.0.2")
    limiter.succeeded("ms-okafor", "10.0.0.2")
    assert limiter.retry_after("ms-okafor", "10.0.0.2") == 0


def test_app_sessions_csrf_and_redirects(service):
    from appliance.web import create_app

    TeacherAccounts(service.config.teachers_path).set_password("ms-okafor", "secret-pass-1")
    app = create_app(service.config)
    client = app.test_client()
    page = client.get("/teacher/login")
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Lax" in page.headers["Set-Cookie"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/teacher/login", data={
        "username": "ms-okafor", "password": "secret-pass-1", "csrf_token": token,
        "next": "//evil.example/"})
    assert response.status_code == 302 and response.headers["Location"] == "/teacher/"
    # signing in made a new token: the pre-login one no longer works
    assert client.post("/teacher/logout", data={"csrf_token": token}).status_code == 400
    huge = {"csrf_token": "x", "id": "y" * (app.config["MAX_CONTENT_LENGTH"] + 1)}
    assert client.post("/teacher/content/exercises", data=huge).status_code == 413
    assert os.stat(service.config.secrets_dir / auth.KEY_FILE).st_size == 32


def test_the_review_queue_offers_only_the_review_window(service):
    import dataclasses
    import secrets
    import time
    import uuid

    def made_days_ago(days, **fields):
        when = time.time() - days * 86_400
        value = (int(when * 1000) << 80) | (0x7 << 76) | (0b10 << 62) | secrets.randbits(62)
        created = dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat()
        return add(service, id=str(uuid.UUID(int=value)),
                   created_at=created.replace("+00:00", "Z"), **fields)

    stale = made_days_ago(20, kind="answer", prediction="correct", confidence=0.55)
    recent = made_days_ago(2, kind="answer", prediction="correct", confidence=0.55)
    assert service.config.review_window_days == 14
    assert [r.id for r in teaching.review_queue(service).grades] == [recent.id]
    service.config = dataclasses.replace(service.config, review_window_days=0)  # everything
    assert {r.id for r in teaching.review_queue(service).grades} == {stale.id, recent.id}
    # an old answer can still be labelled (e.g. from a link), found by its id's time
    assert teaching.label_grade(service, stale.id, "incorrect").ref_id == stale.id
