"""Teacher review sampling (appliance.review) and the daily budget per teacher (teaching).

The sampling is pure: records in, records out. The queue tests use a box with content
and no model (records are written directly), so everything here runs in seconds.
"""
import dataclasses
import datetime as dt
import re

import pytest

from appliance import teaching
from appliance.config import BoxConfig, load_config, to_toml
from appliance.errors import ApplianceError, ConfigError
from appliance.records import InteractionRecord
from appliance.review import (ReviewError, margin_uncertainty, order_for_review,
                              select_for_review, uncertainty)
from appliance.store.teachers import TeacherAccounts
from conftest import demo_box_service


def record(kind="answer", confidence=None, **fields):
    """An answer graded ``correct`` with this confidence, or a question forwarded with
    this best-match confidence."""
    texts = {"question": "Why does ice melt?"}
    defaults = {"texts": {**texts, "answer": "it gets warm"} if kind == "answer" else texts,
                "prediction": "correct" if kind == "answer" else None}
    return InteractionRecord.create(box_id="box-r", school_id="school-r", kind=kind,
                                    confidence=confidence, **{**defaults, **fields})


# --- uncertainty and the order -----------------------------------------------------------
def test_uncertainty_is_closeness_to_the_decision_boundary():
    assert uncertainty(record(confidence=0.5)) == 1.0
    assert uncertainty(record(confidence=0.55)) == pytest.approx(0.9)
    assert uncertainty(record(confidence=0.99)) == pytest.approx(0.02)
    # a forwarded question: its best match's probability of "answers it"
    assert uncertainty(record("question", confidence=0.45)) == pytest.approx(0.9)
    assert uncertainty(record("question", confidence=0.02)) == pytest.approx(0.04)
    # asked with no matcher or an empty FAQ: nothing is known
    assert uncertainty(record("question")) == 1.0
    # the same closeness by either route ties exactly (then the id decides)
    assert uncertainty(record(confidence=0.7)) == uncertainty(record("question", confidence=0.3))


def test_margin_between_the_top_two_classes_when_probabilities_are_known():
    assert margin_uncertainty([0.5, 0.3, 0.2]) == pytest.approx(0.8)
    assert margin_uncertainty([0.1, 0.9]) == pytest.approx(0.2)

    @dataclasses.dataclass
    class Scored:  # e.g. a centre-side evaluation row with the whole distribution
        id: str
        probabilities: dict
        confidence: float | None = None
        kind: str = "answer"

    rows = [Scored("b", {"correct": 0.9, "incorrect": 0.1}),
            Scored("a", {"correct": 0.45, "partly": 0.4, "incorrect": 0.15})]
    assert uncertainty(rows[1]) == pytest.approx(0.95)
    assert [r.id for r in select_for_review(rows, budget=1)] == ["a"]


def test_most_uncertain_first_ties_by_age_and_input_order_does_not_matter():
    sure = record(confidence=0.68)
    coin = record(confidence=0.5)
    older_tie, newer_tie = record(confidence=0.6), record("question", confidence=0.4)
    near_miss = record("question", confidence=0.55)   # the matcher nearly answered it
    far_miss = record("question", confidence=0.05)    # sure that nothing in the FAQ fits
    candidates = [far_miss, sure, newer_tie, coin, near_miss, older_tie]
    expected = [coin, near_miss, older_tie, newer_tie, sure, far_miss]
    assert select_for_review(candidates, budget=None) == expected
    assert select_for_review(candidates[::-1], budget=None) == expected
    assert select_for_review(candidates, budget=3) == expected[:3]
    assert select_for_review(candidates, budget=0) == []
    assert select_for_review([], budget=5) == []


def test_random_is_deterministic_by_seed_and_differs_from_uncertainty():
    candidates = [record(confidence=0.5 + i / 100) for i in range(40)]
    by_uncertainty = select_for_review(candidates, budget=10)
    assert by_uncertainty == candidates[:10]
    sample = select_for_review(candidates, budget=10, strategy="random", seed=7)
    assert len(sample) == 10 and len({r.id for r in sample}) == 10
    assert select_for_review(candidates[::-1], budget=10, strategy="random", seed=7) == sample
    assert sample != by_uncertainty
    assert select_for_review(candidates, budget=10, strategy="random", seed=8) != sample
    # a record's random place does not depend on the others: the larger pool's sample
    # ranks the smaller pool's sample in the same relative order
    whole = order_for_review(candidates, strategy="random", seed=7)
    assert [r for r in whole if r in candidates[:20]] == \
        order_for_review(candidates[:20], strategy="random", seed=7)


@pytest.mark.parametrize("kwargs", [{"budget": -1}, {"budget": 2.5}, {"budget": True},
                                    {"budget": 3, "strategy": "margin"}])
def test_bad_requests_are_refused_with_a_hint(kwargs):
    with pytest.raises(ReviewError) as info:
        select_for_review([record(confidence=0.5)], **kwargs)
    assert isinstance(info.value, ApplianceError) and info.value.hint


# --- settings ------------------------------------------------------------------------------
def test_budget_and_strategy_settings(tmp_path):
    defaults = BoxConfig(data_dir=tmp_path)
    assert (defaults.review_daily_budget, defaults.review_strategy) == (40, "uncertainty")
    (tmp_path / "box.toml").write_text(to_toml({"review_daily_budget": 0,
                                                "review_strategy": "random"}))
    config = load_config(tmp_path)
    assert (config.review_daily_budget, config.review_strategy) == (0, "random")
    for text, needle in (("review_daily_budget = -1\n", "review_daily_budget"),
                         ('review_daily_budget = "5"\n', "review_daily_budget"),
                         ('review_strategy = "smart"\n', "review_strategy")):
        (tmp_path / "box.toml").write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_config(tmp_path)


# --- the queue: budget per teacher and per day -----------------------------------------------
@pytest.fixture
def service(tmp_path):
    return demo_box_service(tmp_path, "box-r", "school-r", review_daily_budget=2)


def add(service, kind="answer", confidence=None, **fields):
    return service.outbox.append(record(kind, confidence, exercise_id="sci-1", **fields))


def ids(records):
    return [r.id for r in records]


def test_the_queue_offers_the_most_uncertain_within_each_teachers_daily_budget(service):
    sure = add(service, confidence=0.95)                   # not a candidate at all
    low = add(service, confidence=0.65)                    # uncertainty 0.7
    coin = add(service, confidence=0.51)                   # 0.98
    question = add(service, "question", confidence=0.45)   # 0.9
    answered = add(service, "question", confidence=0.9, prediction="faq-1",
                   texts={"question": "What is rain?", "answer": "Water falling."})
    queue = teaching.review_queue(service, "ms-okafor")
    assert ids(queue.items) == [coin.id, question.id]
    assert (queue.left, queue.budget, queue.more, queue.size) == (2, 2, 1, 3)
    assert ids(queue.grades) == [coin.id] and ids(queue.questions) == [question.id]
    assert queue.scores[coin.id] == pytest.approx(0.98)
    assert sure.id not in ids(queue.items) and answered.id not in ids(queue.items)

    teaching.label_grade(service, coin.id, "incorrect", teacher="ms-okafor")
    queue = teaching.review_queue(service, "ms-okafor")
    assert ids(queue.items) == [question.id] and queue.left == 1 and queue.more == 1
    # changing one's own label is not another review
    teaching.label_grade(service, coin.id, "correct", teacher="ms-okafor")
    assert teaching.review_queue(service, "ms-okafor").left == 1
    # another teacher has a budget of their own, on what is still waiting
    other = teaching.review_queue(service, "mr-lee")
    assert ids(other.items) == [question.id, low.id] and other.left == 2

    teaching.answer_question(service, question.id, "Light scatters.", "science", "5-6",
                             teacher="ms-okafor")
    spent = teaching.review_queue(service, "ms-okafor")
    assert spent.spent and spent.items == [] and spent.more == 1 and spent.used == 2
    # tomorrow (box local date) the budget is whole again
    tomorrow = teaching.review_queue(service, "ms-okafor", today=dt.date.today()
                                     + dt.timedelta(days=1))
    assert ids(tomorrow.items) == [low.id] and tomorrow.left == 2


def test_only_todays_reviews_by_this_teacher_count(service):
    reviewer = teaching.teacher_reviewer_id(service, "ms-okafor")
    waiting = [add(service, confidence=0.6) for _ in range(3)]
    done = [add(service, confidence=0.6) for _ in range(3)]
    # yesterday's review, one written before reviewers were recorded, and one by someone else
    for original, comment, created_at in (
            (done[0], reviewer, (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))),
            (done[1], None, None), (done[2], teaching.teacher_reviewer_id(service, "x"), None)):
        texts = dict(original.texts, **({"comment": comment} if comment else {}))
        extra = {"created_at": created_at.isoformat().replace("+00:00", "Z")} if created_at else {}
        add(service, "teacher_label", ref_id=original.id, teacher_label="correct",
            texts=texts, **extra)
    queue = teaching.review_queue(service, "ms-okafor")
    assert queue.used == 0 and ids(queue.items) == ids(waiting[:2]) and queue.more == 1
    unlimited = dataclasses.replace(service.config, review_daily_budget=0)
    service.config = unlimited
    queue = teaching.review_queue(service, "ms-okafor")
    assert queue.budget is None and queue.left is None and not queue.spent
    assert ids(queue.items) == ids(waiting)


def test_teacher_records_name_the_reviewer_by_pseudonym_only(service):
    answer = add(service, confidence=0.6)
    label = teaching.label_grade(service, answer.id, "correct", teacher="ms-okafor")
    reviewer = label.texts["comment"]
    assert re.fullmatch(r"t-[0-9a-f]{24}", reviewer) and "okafor" not in str(label.to_dict())
    assert teaching.reviewer_of(label) == reviewer
    assert reviewer == teaching.teacher_reviewer_id(service, "ms-okafor")
    assert reviewer != teaching.teacher_reviewer_id(service, "mr-lee")
    assert {k: v for k, v in label.texts.items() if k != "comment"} == answer.texts
    # still a schema_version 1 record any reader accepts
    assert InteractionRecord.from_dict(label.to_dict()) == label and label.schema_version == 1
    assert teaching.reviewer_of(answer) is None  # a student's record names no reviewer


def test_random_strategy_on_the_box_is_stable_for_the_day(service):
    service.config = dataclasses.replace(service.config, review_strategy="random",
                                         review_daily_budget=5)
    candidates = [add(service, confidence=0.5 + i / 100) for i in range(15)]
    queue = teaching.review_queue(service, "ms-okafor")
    expected = select_for_review(candidates, budget=5, strategy="random",
                                 seed=f"box-r/{dt.date.today().isoformat()}")
    assert queue.items == expected and queue.strategy == "random"
    assert teaching.review_queue(service, "ms-okafor").items == expected  # a reload
    assert expected != candidates[:5]


# --- the review page -----------------------------------------------------------------------
def test_review_page_shows_the_budget_the_order_and_when_it_is_spent(service):
    from appliance.web import create_app

    TeacherAccounts(service.config.teachers_path).set_password("ms-okafor", "secret-pass-1")
    service.config.config_path.write_text(to_toml(service.config.settings()))
    first, second, third = (add(service, confidence=c) for c in (0.66, 0.52, 0.6))
    client = create_app(load_config(service.config.data_dir)).test_client()
    login = client.get("/teacher/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    client.post("/teacher/login", data={"username": "ms-okafor", "password": "secret-pass-1",
                                        "csrf_token": token})
    page = client.get("/teacher/review").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert "2 of your daily 2 reviews left" in page and "Most uncertain first" in page
    assert re.findall(r'data-record="([^"]+)" data-rank="(\d)"', page) == \
        [(second.id, "1"), (third.id, "2")]
    assert "1 more wait beyond your budget for today" in page

    for done in (second, third):
        response = client.post(f"/teacher/review/{done.id}/label",
                               data={"label": "correct", "csrf_token": token},
                               follow_redirects=True)
        assert response.status_code == 200
    page = response.text
    assert "0 of your daily 2 reviews left" in page and 'id="budget-spent"' in page
    assert "Nothing more until tomorrow (1 still waiting)" in page
    assert "data-record" not in page and "<form method=\"post\" action=\"/teacher/review" not in page
    assert first.id not in page
    assert "1 waiting" in client.get("/teacher/").text  # the dashboard counts the same queue


def test_mixed_alternates_the_most_uncertain_and_a_random_sample():
    candidates = [record(confidence=0.5 + i / 100) for i in range(40)]
    unsure = order_for_review(candidates, strategy="uncertainty")
    sample = order_for_review(candidates, strategy="random", seed=3)
    mixed = select_for_review(candidates, budget=10, strategy="mixed", seed=3)
    assert len({r.id for r in mixed}) == 10
    assert mixed[0] == unsure[0]
    assert mixed[1] == next(r for r in sample if r != unsure[0])
    # every odd place is the next most uncertain not yet taken: at least half the budget
    assert all(r in mixed for r in unsure[:5])
    assert mixed != select_for_review(candidates, budget=10) != sample[:10]
    assert sorted(r.id for r in order_for_review(candidates, strategy="mixed", seed=3)) == \
        sorted(r.id for r in candidates)
