"""The workload of bench/serve.py: 70% grade / 30% ask over a 2,000-answer knowledge base.

Grade requests are the demo's labelled answers to its exercises. The knowledge base is
built deterministically (one seed) from text nobody on the team wrote, read-only from
../shared/datasets (see its README):
  * the 79 demo FAQ entries, as shipped;
  * the demo exercises, SciEntsBank (train + unseen questions) and Beetle questions, each with
    its reference answer;
  * every WikiQA train question with its first correct sentence (Wikipedia-style facts), and
    each further correct sentence under a reworded copy of its question;
  * Beetle's further reference answers and SciEntsBank's correct student answers under the
    question's last sentence (the short way a teacher would write it), reworded, to fill up.
Entries written for the same source question share a *group*: answering any of them is right.

The questions students ask (AskQuestion) are KB questions as written, KB questions reworded,
and WikiQA dev questions, which no entry answers: those should go to the teacher's queue.
"""
from __future__ import annotations

import csv
import dataclasses
import random
import re
import shutil
from collections import Counter
from pathlib import Path

from appliance.content import (Exercise, FaqEntry, demo_content_dir, read_exercises, read_faq,
                               read_labelled_content)
from export.datasets import read_semeval, read_wikiqa

ASK_SHARE = 0.30
KB_SIZE = 2000
# Of the ask requests: KB questions as written, reworded, and questions no entry answers.
ASK_KINDS = (("as written", 0.4), ("reworded", 0.3), ("unanswerable", 0.3))
REWORDED_POOL = 600

_SPACE_BEFORE = re.compile(r" ([.,;:?!%)\]]|'s\b|n't\b|'re\b|'ve\b|'ll\b|'d\b)")
_SPACE_AFTER = re.compile(r"([(\[$#]) ")


@dataclasses.dataclass(frozen=True)
class AskQuestion:
    text: str
    kind: str                           # one of ASK_KINDS' names
    expected: frozenset[str] = frozenset()  # FAQ ids that answer it; empty: none does


@dataclasses.dataclass
class AskWorkload:
    entries: list[FaqEntry]
    sources: Counter                    # entries per source, for the report
    questions: dict[str, list[AskQuestion]]  # per kind

    def draw(self, rng: random.Random) -> AskQuestion:
        kind = rng.choices([k for k, _ in ASK_KINDS], [w for _, w in ASK_KINDS])[0]
        return rng.choice(self.questions[kind])


Pair = tuple[Exercise, str]


def grade_pairs() -> list[Pair]:
    """The demo's labelled answers with their exercises: what students send."""
    exercises, answers = read_labelled_content(demo_content_dir())
    by_id = {e.id: e for e in exercises}
    return [(by_id[a.exercise_id], a.answer) for a in answers]


@dataclasses.dataclass(frozen=True)
class Mix:
    grades: list[Pair]
    asks: AskWorkload

    def draw(self, rng: random.Random) -> tuple[str, object]:
        """("grade", (exercise, answer)) or ("ask", AskQuestion)."""
        if rng.random() < ASK_SHARE:
            return "ask", self.asks.draw(rng)
        return "grade", rng.choice(self.grades)


def detokenize(text: str) -> str:
    """WikiQA's tokenized, lower-cased text as a person would type it."""
    text = _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text.strip()))
    text = text.replace("`` ", '"').replace(" ''", '"').replace(" ' ", "' ")
    return text[:1].upper() + text[1:]


def as_question(text: str) -> str:
    text = text.strip()
    return text if text.endswith("?") else text.rstrip(".") + "?"


def last_sentence(question: str) -> str:
    """SciEntsBank questions set a scene first; the last sentence is what is asked."""
    parts = [p for p in re.split(r"(?<=[.?!])\s+", question.strip()) if p]
    return parts[-1] if parts else question


_REWORDINGS = (
    lambda q: "Can you tell me " + _lower_first(q),
    lambda q: _lower_first(q).rstrip("?"),          # typed in a hurry
    lambda q: "Please explain: " + _lower_first(q),
    lambda q: "I want to know " + _lower_first(q),
    lambda q: q.replace("What is", "What's").replace("do not", "don't").replace(
        "does not", "doesn't") if re.search(r"What is|do not|does not", q)
    else "Teacher, " + _lower_first(q),
)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


_IMPERATIVE = re.compile(r"^(Explain|Describe|Tell|Name|List|Give|Predict|Compare|Identify)\b")


def reword(question: str, rng: random.Random) -> str:
    if _IMPERATIVE.match(question):  # "Explain your choice." reads as a request, not a question
        return rng.choice(("Please ", "Could you ", "Can you ")) + _lower_first(question)
    return rng.choice(_REWORDINGS)(question)


class _Builder:
    def __init__(self):
        self.entries: list[FaqEntry] = []
        self.groups: dict[str, str] = {}     # faq id -> group
        self.sources: Counter = Counter()

    def add(self, source: str, group: str, subject: str, band: str, question: str,
            answer: str) -> None:
        entry_id = f"kb-{source}-{self.sources[source] + 1:04d}"
        self.entries.append(FaqEntry(entry_id, subject[:40], band[:20], question[:2000],
                                     answer[:4000]))
        self.groups[entry_id] = group
        self.sources[source] += 1

    def full(self, size: int) -> bool:
        return len(self.entries) >= size


def build_workload(datasets: Path, size: int = KB_SIZE, seed: int = 5) -> AskWorkload:
    """The knowledge base (``size`` entries) and the questions asked of it."""
    rng = random.Random(seed)
    semeval = datasets / "semeval2013-task7-2way"
    wikiqa_train = read_wikiqa(datasets / "wikiqa" / "train").groups
    wikiqa_dev = read_wikiqa(datasets / "wikiqa" / "dev").groups
    sci_train = read_semeval(semeval / "sciEntsBank" / "train")
    sci = sci_train.exercises + read_semeval(semeval / "sciEntsBank" / "test-unseen-questions").exercises
    sci_answers = sci_train.answers
    beetle = read_semeval(semeval / "beetle" / "train").exercises

    kb = _Builder()
    for entry in read_faq(demo_content_dir() / "faq.csv"):
        kb.entries.append(entry)
        kb.groups[entry.id] = entry.id
        kb.sources["demo-faq"] += 1
    for e in read_exercises(demo_content_dir() / "exercises.csv"):
        kb.add("exercise", f"ex:{e.id}", e.subject, e.grade_band, e.question, e.reference_answers[0])
    for e in sci + beetle:
        kb.add("semeval", f"se:{e.id}", e.subject, e.grade_band, e.question, e.reference_answers[0])
    extra = []
    for g in wikiqa_train:
        right = [detokenize(c) for c, label in g.candidates if label]
        question = as_question(detokenize(g.question))
        kb.add("wikiqa", f"wq:{g.question_id}", "general", "9-12", question, right[0])
        extra += [(f"wq:{g.question_id}", question, answer) for answer in right[1:]]
    for group, question, answer in extra:
        kb.add("wikiqa-more", group, "general", "9-12", reword(question, rng), answer)
    for e in beetle:
        for answer in e.reference_answers[1:]:
            kb.add("beetle-more", f"se:{e.id}", e.subject, e.grade_band,
                   reword(last_sentence(e.question), rng), answer)
    correct = {}
    for a in sci_answers:
        if a.label == "correct":
            correct.setdefault(a.exercise_id, []).append(a.answer)
    by_id = {e.id: e for e in sci}
    pools = [(by_id[i], rng.sample(answers, len(answers))) for i, answers in sorted(correct.items())]
    round_ = 0
    while not kb.full(size) and any(round_ < len(p) for _, p in pools):
        for e, answers in pools:
            if kb.full(size):
                break
            if round_ < len(answers):
                short = last_sentence(e.question)
                kb.add("student", f"se:{e.id}", e.subject, e.grade_band,
                       short if round_ == 0 else reword(short, rng), answers[round_])
        round_ += 1
    if not kb.full(size):
        raise ValueError(f"the datasets give only {len(kb.entries)} knowledge base entries, "
                         f"fewer than {size}")
    entries = kb.entries[:size]
    by_group: dict[str, set[str]] = {}
    for entry in entries:
        by_group.setdefault(kb.groups[entry.id], set()).add(entry.id)
    expected = {e.id: frozenset(by_group[kb.groups[e.id]]) for e in entries}
    written = [AskQuestion(e.question, "as written", expected[e.id]) for e in entries]
    reworded = [AskQuestion(reword(e.question, rng), "reworded", expected[e.id])
                for e in rng.sample(entries, min(REWORDED_POOL, len(entries)))]
    unanswerable = [AskQuestion(as_question(detokenize(g.question)), "unanswerable")
                    for g in wikiqa_dev]
    sources = Counter(e.id[3:].rsplit("-", 1)[0] if e.id.startswith("kb-") else "demo-faq"
                      for e in entries)
    return AskWorkload(entries, sources,
                       {"as written": written, "reworded": reworded,
                        "unanswerable": unanswerable})


def ask_outcome(question: AskQuestion, answered_faq_id: str | None) -> str:
    """How the box did on one question: answered it right/wrong, or forwarded it."""
    if not question.expected:
        return "unanswerable: answered" if answered_faq_id else "unanswerable: forwarded"
    if answered_faq_id is None:
        return "in KB: forwarded"
    return "in KB: right" if answered_faq_id in question.expected else "in KB: wrong"


def write_content_dir(out_dir: Path, entries: list[FaqEntry]) -> Path:
    """The demo exercises and answers plus ``entries`` as faq.csv: what the box imports."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("exercises.csv", "answers.csv"):
        shutil.copyfile(demo_content_dir() / name, out_dir / name)
    with open(out_dir / "faq.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id", "subject", "grade_band", "question", "answer"))
        for e in entries:
            writer.writerow((e.id, e.subject, e.grade_band, e.question, e.answer))
    read_faq(out_dir / "faq.csv")  # refuse to bench a KB the box would refuse
    return out_dir
