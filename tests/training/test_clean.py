"""Cleaning: normalisation, empties and oversize, PII, exact and near duplicates, conflicts."""
import itertools
import random

import pytest

from appliance.content import Exercise, LabelledAnswer
from training.data.clean import (_clusters, canonical_text, clean_answers, clean_exercises,
                                 jaccard, normalize_text, shingles)
from training.data.labels import SourcedAnswer, source_rank
from training.errors import TrainingError

EXERCISES = [Exercise("e1", "science", "3-5", "What happens to water at 100 C?", ("It boils.",)),
             Exercise("e2", "science", "3-5", "What is a producer?", ("A green plant.",))]


def answers(*rows):
    return [LabelledAnswer(e, text, label) for e, text, label in rows]


def test_normalize_text_folds_unicode_and_whitespace():
    assert normalize_text("  ＡＢＣ\u00a0 boils\t\n\u200bnow\ufeff ") == "ABC boils now"
    assert normalize_text("ﬁne ① ") == "fine 1"
    assert normalize_text("plain text") == "plain text"
    assert canonical_text("It BOILS!!  (at 100°C).") == "it boils at 100°c"


def test_empty_and_oversize_answers_are_dropped_and_counted():
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "it boils", "correct"), ("e1", "   ", "incorrect"), ("e1", "...?", "incorrect"),
        ("e1", "x" * 51, "incorrect"), ("e2", "a plant", "correct"),
        ("e9", "no such exercise", "correct")), max_chars=50)
    assert [a.answer for a in kept] == ["it boils", "a plant"]
    assert report.dropped == {"empty": 2, "oversize": 1, "unknown_exercise": 1}
    assert (report.read, report.kept) == (6, 2)


def test_answers_come_out_normalised():
    [kept], _ = clean_answers(EXERCISES, answers(("e1", " it\u3000 boils\n", "correct")))
    assert kept == LabelledAnswer("e1", "it boils", "correct")


def test_pii_is_scrubbed_and_counted():
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "it boils, mail me at ana.lima@example.org", "correct"),
        ("e1", "steam. call +44 20 7946 0958 after school", "correct"),
        ("e1", "My name is Ana Lima and water boils", "correct"),
        ("e1", "Tomas says it freezes", "incorrect"),
        ("e1", "Call me Ben. it evaporates", "correct"),
        ("e1", "my name is on the paper, it boils at 100 C", "correct")), names=["Tomas"])
    assert [a.answer for a in kept] == [
        "it boils, mail me at [email]", "steam. call [phone] after school",
        "My name is [name] and water boils", "[name] says it freezes",
        "Call me [name]. it evaporates", "my name is on the paper, it boils at 100 C"]
    assert report.pii_scrubbed == 5


def test_exact_duplicates_collapse_to_the_first():
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "It boils.", "correct"), ("e1", "It  boils.", "correct"),
        ("e1", "It boils.", "correct"), ("e2", "It boils.", "correct")))
    # the same text under another exercise is another example
    assert kept == answers(("e1", "It boils.", "correct"), ("e2", "It boils.", "correct"))
    assert report.dropped == {"exact_duplicate": 2}


def test_near_duplicates_by_case_punctuation_and_shingles():
    # 0.9 on word bigrams: one inserted word needs an answer of 27+ words to be "near"
    long_a = ("when you heat the water in the pot it gets hotter and hotter until it reaches "
              "one hundred degrees and then it boils and turns into a gas called steam")
    long_b = long_a.replace("the pot", "the big pot")
    assert jaccard(shingles(canonical_text(long_a)), shingles(canonical_text(long_b))) >= 0.9
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "It boils.", "correct"), ("e1", "it BOILS", "correct"),
        ("e1", long_a, "correct"), ("e1", long_b, "correct"),
        ("e1", "it freezes", "incorrect")))
    assert [a.answer for a in kept] == ["It boils.", long_a, "it freezes"]
    assert report.dropped == {"near_duplicate": 2}


def test_word_order_and_one_word_in_a_short_answer_are_not_near_duplicates():
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "bulb A is brighter than bulb B", "correct"),
        ("e1", "bulb B is brighter than bulb A", "incorrect"),
        ("e1", "the circuit is closed", "correct"),
        ("e1", "the circuit is not closed", "incorrect")))
    assert len(kept) == 4 and not report.dropped and not report.conflicts


def test_near_duplicates_with_different_labels_are_handed_over_as_a_conflict():
    kept, report = clean_answers(EXERCISES, answers(
        ("e1", "It boils.", "correct"), ("e1", "it boils", "incorrect"),
        ("e1", "It boils!", "correct"), ("e1", "it melts", "incorrect")))
    assert [a.answer for a in kept] == ["it melts"]
    assert report.conflicts == [tuple(answers(("e1", "It boils.", "correct"),
                                              ("e1", "it boils", "incorrect"),
                                              ("e1", "It boils!", "correct")))]
    assert report.to_dict()["label_conflicts"] == 1
    assert not report.dropped


def test_the_ranked_source_is_kept_of_agreeing_duplicates():
    kept, report = clean_answers(EXERCISES, [
        SourcedAnswer("e1", "it boils", "correct", "weak"),
        SourcedAnswer("e1", "It boils.", "correct", "dataset"),
        SourcedAnswer("e1", "it boils", "correct", "teacher")], rank=source_rank)
    assert kept == [SourcedAnswer("e1", "it boils", "correct", "teacher")]
    assert report.dropped == {"exact_duplicate": 1, "near_duplicate": 1}


def test_near_duplicate_detection_can_be_switched_off_and_is_validated():
    kept, report = clean_answers(EXERCISES, answers(("e1", "It boils.", "correct"),
                                                    ("e1", "it boils", "correct")),
                                 near_duplicate=None)
    assert len(kept) == 2
    with pytest.raises(TrainingError, match="near_duplicate"):
        clean_answers(EXERCISES, [], near_duplicate=1.5)


def test_prefix_filtered_clusters_equal_the_brute_force_ones():
    """The fast pairing finds exactly the pairs an all-pairs comparison finds."""
    rng = random.Random(7)
    words = "water boils steam gas heat the a it is turns into hot".split()
    texts = []
    for _ in range(300):
        base = [rng.choice(words) for _ in range(rng.randint(1, 14))]
        texts.append(" ".join(base))
        if rng.random() < 0.5:  # a variant one word away, so there are near pairs to find
            variant = list(base)
            variant[rng.randrange(len(variant))] = rng.choice(words)
            texts.append(" ".join(variant + ([rng.choice(words)] if rng.random() < .5 else [])))
    for threshold in (0.5, 0.7, 0.9):
        fast = _clusters(texts, threshold)
        assert sorted(map(sorted, brute_force_clusters(texts, threshold))) == sorted(
            map(sorted, fast))
        assert any(len(c) > 1 for c in fast)


def brute_force_clusters(texts, threshold):
    """Every pair compared: the reference the fast pairing must equal."""
    parent = list(range(len(texts)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i
    sets = [shingles(canonical_text(t)) for t in texts]
    for i, j in itertools.combinations(range(len(texts)), 2):
        if jaccard(sets[i], sets[j]) >= threshold:
            parent[find(j)] = find(i)
    clusters = {}
    for i in range(len(texts)):
        clusters.setdefault(find(i), set()).add(i)
    return clusters.values()


def test_clean_exercises_normalises_and_drops_the_unusable():
    cleaned = clean_exercises([
        Exercise("e1", "s", "b", " What  happens? ", ("It boils.", "It  boils.", " ")),
        Exercise("e2", "s", "b", "No reference", ("  ",))])
    assert cleaned == [Exercise("e1", "s", "b", "What happens?", ("It boils.",))]
