"""The answer threshold a matcher bundle carries, and the box using it."""
from appliance.ask import ANSWER_ABOVE, answer_threshold
from appliance.bundle import ModelManifest
from export.thresholds import answer_threshold_for, best_f1_threshold


def test_the_threshold_maximises_positive_f1():
    # answering from 0.2 up catches 3 of 3 matches with 1 wrong answer: F1 0.857, the best
    assert best_f1_threshold([0.9, 0.8, 0.3, 0.2, 0.1], [1, 1, 0, 1, 0]) == 0.2
    # tied scores are never split: at 0.5 both tied pairs are answered
    assert best_f1_threshold([0.9, 0.5, 0.5, 0.1], [1, 0, 1, 0]) == 0.5
    assert best_f1_threshold([0.4, 0.3], [0, 0]) is None


def test_the_answer_threshold_puts_precision_first():
    scores, truth = [0.9, 0.8, 0.3, 0.2, 0.1], [1, 1, 0, 1, 0]
    # F0.5: answering only the two sure ones (precision 1, recall 2/3) beats catching all three
    assert answer_threshold_for(scores, truth) == 0.8
    assert best_f1_threshold(scores, truth, beta=0.5) == 0.8


class Matcher:
    def __init__(self, thresholds):
        self.manifest = ModelManifest(model_id="m", version="1", task="match",
                                      labels=("other", "match"), max_length=64,
                                      input_format="question|answer", positive_label="match",
                                      thresholds=thresholds)


def test_the_box_answers_at_the_bundles_threshold_unless_a_technician_set_one():
    assert answer_threshold(Matcher({ANSWER_ABOVE: 0.31}), -1.0) == 0.31
    assert answer_threshold(Matcher({ANSWER_ABOVE: 0.31}), 0.8) == 0.8      # set in box.toml
    assert answer_threshold(Matcher({"review_below": 0.7}), -1.0) == 0.6    # none carried
    assert answer_threshold(None, -1.0) == 0.6
