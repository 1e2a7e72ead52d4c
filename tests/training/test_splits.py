"""Splits that do not leak, keep the label mix, repeat exactly; snapshot ids that mean content."""
import collections
import dataclasses
import random
from pathlib import Path

import pytest

from appliance.content import LabelledAnswer
from training.data.semeval import read_semeval
from training.data.splits import snapshot_id, split_by_group, stratified_group_split
from training.errors import TrainingError

SCIENTSBANK_TRAIN = (Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
                     / "semeval2013-task7-2way" / "sciEntsBank" / "train")


@pytest.fixture(scope="module")
def scientsbank():
    if not SCIENTSBANK_TRAIN.is_dir():
        pytest.skip(f"the shared datasets are not at {SCIENTSBANK_TRAIN}")
    return read_semeval(SCIENTSBANK_TRAIN).answers


def by_question(a):
    return a.exercise_id


def by_label(a):
    return a.label


def share(items, label="correct"):
    return sum(a.label == label for a in items) / len(items)


def test_stratified_split_on_scientsbank_holds_out_whole_questions_with_the_label_mix(
        scientsbank):
    train, held = stratified_group_split(scientsbank, by_question, by_label, 0.2, seed=42)
    assert len(train) + len(held) == len(scientsbank) == 4969
    assert not {a.exercise_id for a in train} & {a.exercise_id for a in held}
    assert abs(len(held) / len(scientsbank) - 0.2) < 0.02
    whole = share(scientsbank)  # 2008 / 4969
    assert abs(share(held) - whole) < 0.02 and abs(share(train) - whole) < 0.02
    # the same call, and the same data in another order, give the same split
    again = stratified_group_split(scientsbank, by_question, by_label, 0.2, seed=42)
    assert again == (train, held)
    shuffled = list(scientsbank)
    random.Random(1).shuffle(shuffled)
    _, held_shuffled = stratified_group_split(shuffled, by_question, by_label, 0.2, seed=42)
    assert sorted(map(dataclasses.astuple, held_shuffled)) == sorted(map(dataclasses.astuple,
                                                                          held))
    # another seed holds out other questions
    _, other = stratified_group_split(scientsbank, by_question, by_label, 0.2, seed=7)
    assert {a.exercise_id for a in other} != {a.exercise_id for a in held}


def test_stratified_split_keeps_the_label_mix_better_than_hash_buckets(scientsbank):
    """Over ten seeds the stratified held-out share of 'correct' stays within 2 points of the
    whole; plain hash buckets wander further (the reason this function exists)."""
    whole = share(scientsbank)
    stratified, hashed = [], []
    for seed in range(10):
        _, held = stratified_group_split(scientsbank, by_question, by_label, 0.2, seed)
        stratified.append(abs(share(held) - whole))
        _, held = split_by_group(scientsbank, by_question, 0.2, seed)
        hashed.append(abs(share(held) - whole))
    assert max(stratified) < 0.02
    assert max(stratified) < max(hashed)


def test_edge_fractions_and_bad_ones():
    items = [LabelledAnswer(f"q{i % 5}", f"a{i}", "correct" if i % 3 else "incorrect")
             for i in range(40)]
    train, held = stratified_group_split(items, by_question, by_label, 0.0, seed=1)
    assert (train, held) == (items, [])
    for bad in (-0.1, 1.0):
        with pytest.raises(TrainingError, match="eval_fraction"):
            stratified_group_split(items, by_question, by_label, bad)
    one_group = [LabelledAnswer("q", f"a{i}", "correct") for i in range(5)]
    assert stratified_group_split(one_group, by_question, by_label, 0.2) == (one_group, [])


def test_snapshot_id_is_order_free_and_follows_every_change():
    rows = [{"exercise_id": f"q{i % 4}", "references": ["r"], "answer": f"answer {i}",
             "label": "correct" if i % 2 else "incorrect"} for i in range(30)]
    first = snapshot_id(rows)
    assert first.startswith("ds-") and len(first) == 3 + 16
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    assert snapshot_id(shuffled) == first
    assert snapshot_id([dict(reversed(list(r.items()))) for r in rows]) == first  # key order
    flipped = [dict(r) for r in rows]
    flipped[7]["label"] = "incorrect" if flipped[7]["label"] == "correct" else "correct"
    assert snapshot_id(flipped) != first
    assert snapshot_id(rows[:-1]) != first
    assert snapshot_id(rows + rows[:1]) != first  # a duplicated example is another dataset
    answers = [LabelledAnswer("q", "a", "correct")]
    assert snapshot_id(answers) == snapshot_id([{"exercise_id": "q", "answer": "a",
                                                 "label": "correct"}])
    with pytest.raises(TypeError):
        snapshot_id([("q", "a")])


def test_split_by_group_still_splits_by_hash():
    items = [LabelledAnswer(f"q{i}", "a", "correct") for i in range(200)]
    train, held = split_by_group(items, by_question, 0.25, seed=13)
    assert 30 < len(held) < 70 and len(train) + len(held) == 200
    more = items + [LabelledAnswer("q-new", "a", "correct")]
    assert split_by_group(more, by_question, 0.25, seed=13)[1][:len(held)] == held
    assert collections.Counter(a.exercise_id for a in held).most_common(1)[0][1] == 1


def test_a_calibration_sample_keeps_each_labels_share_and_is_repeatable():
    from training.data.splits import stratified_sample_split

    items = [(i, "correct" if i % 3 else "incorrect") for i in range(300)]
    kept, held = stratified_sample_split(items, lambda x: x[1], 0.1, seed=7)
    assert len(held) == 30 and sorted(kept + held) == items
    assert sum(1 for _, y in held if y == "incorrect") == 10  # 10% of the 100 incorrect
    assert stratified_sample_split(items, lambda x: x[1], 0.1, seed=7) == (kept, held)
    assert stratified_sample_split(items, lambda x: x[1], 0.1, seed=8)[1] != held
    assert stratified_sample_split(items, lambda x: x[1], 0.0, seed=7) == (items, [])
