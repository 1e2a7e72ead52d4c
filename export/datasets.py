"""The shared datasets read for evaluation: SemEval-2013 Task 7 XML and WikiQA.

Pure: a path in, ``Exercise``/``LabelledAnswer`` or ``QAGroup`` items out, with a
:class:`ReadReport` of what was read and what was skipped for which reason. See
export/evaluate.py for why this sits in ``export``.
"""
from __future__ import annotations

import collections
import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NamedTuple, Sequence


from appliance.content import ID_RE, Exercise, LabelledAnswer

from .errors import ExportError

FORMATS = ("semeval", "wikiqa")
SEMEVAL_LABELS = ("correct", "incorrect")
#: Grade band of each SemEval corpus: SciEntsBank is grades 3-6, Beetle is high-school physics.
GRADE_BANDS = {"sciEntsBank": "3-6", "beetle": "9-12"}
#: Beetle reference answers carry a category; the best come first.
REFERENCE_RANK = {"BEST": 0, "GOOD": 1, "MINIMAL": 2, "KEYWORD": 3}
MAX_XML_BYTES = 16 * 1024 * 1024
WIKIQA_FILES = ("a.toks", "b.toks", "sim.txt", "id.txt")
SEMEVAL_HINT = ("give a split directory of SemEval-2013 Task 7 XML files, e.g. "
                "../shared/datasets/semeval2013-task7-2way/sciEntsBank/test-unseen-answers")
WIKIQA_HINT = ("give a WikiQA split directory with a.toks, b.toks, sim.txt and id.txt, e.g. "
               "../shared/datasets/wikiqa/dev")


class DatasetError(ExportError):
    """A dataset path, file set or format that cannot be evaluated at all."""


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass
class ReadReport:
    """What a reader read and what it skipped, by reason (a reason's first place is kept)."""
    source: str
    unit: str = "answers"          # what ``items_read`` counts: "answers" or "pairs"
    files_read: int = 0
    files_skipped: int = 0
    questions: int = 0
    items_read: int = 0
    items_skipped: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first_skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def skip_file(self, reason: str, where: str) -> None:
        self.files_skipped += 1
        self._note(reason, where)

    def skip_item(self, reason: str, where: str) -> None:
        self.items_skipped += 1
        self._note(reason, where)

    def _note(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.first_skipped.setdefault(reason, where)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files_read": self.files_read,
                "files_skipped": self.files_skipped, "questions": self.questions,
                f"{self.unit}_read": self.items_read, f"{self.unit}_skipped": self.items_skipped,
                "skipped": dict(sorted(self.skipped.items())),
                "first_skipped": dict(sorted(self.first_skipped.items()))}


@dataclasses.dataclass
class SemEvalData:
    exercises: list[Exercise]
    answers: list[LabelledAnswer]
    report: ReadReport

    def limited(self, limit: int | None) -> "SemEvalData":
        """The first ``limit`` answers (file order, then document order) and their exercises."""
        if limit is None or limit >= len(self.answers):
            return self
        answers = self.answers[:limit]
        used = {a.exercise_id for a in answers}
        return SemEvalData([e for e in self.exercises if e.id in used], answers, self.report)


class QAGroup(NamedTuple):
    """One WikiQA question and its candidate sentences, label 1 when it answers the question."""
    question_id: str
    question: str
    candidates: list[tuple[str, int]]


@dataclasses.dataclass
class WikiQAData:
    groups: list[QAGroup]
    report: ReadReport

    def limited(self, limit: int | None) -> "WikiQAData":
        """The first ``limit`` questions (whole questions, so rankings stay meaningful)."""
        if limit is None or limit >= len(self.groups):
            return self
        return WikiQAData(self.groups[:limit], self.report)


class SkipFile(Exception):
    """A whole file cannot be used; the reason is a short key counted in the report."""


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _element_text(element: ET.Element | None) -> str:
    return _clean("".join(element.itertext())) if element is not None else ""


def detect_corpus(path: Path) -> str | None:
    """``beetle`` or ``sciEntsBank`` when a directory on the path names the corpus."""
    for part in reversed(Path(path).resolve().parts):
        low = part.lower()
        if "beetle" in low:
            return "beetle"
        if "scientsbank" in low:
            return "sciEntsBank"
    return None


def _corpus_of(root: ET.Element, corpus: str | None) -> str:
    if corpus:
        return corpus
    beetle_like = root.get("qtype") is not None or any(
        ref.get("category") for ref in root.iter("referenceAnswer"))
    return "beetle" if beetle_like else "sciEntsBank"


def parse_semeval_question(data: bytes | str, *, corpus: str | None = None,
                           labels: Sequence[str] = SEMEVAL_LABELS, where: str = "xml",
                           report: ReadReport | None = None
                           ) -> tuple[Exercise, list[LabelledAnswer]]:
    """One SemEval question file -> its exercise and labelled answers.

    Raises ``SkipFile(reason)`` when the whole file is unusable; answers with an unknown label
    or no text are skipped and counted in ``report``.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise SkipFile("malformed_xml") from None
    if root.tag != "question":
        raise SkipFile("not_a_question_file")
    qid = (root.get("id") or "").strip()
    if not ID_RE.match(qid):
        raise SkipFile("bad_question_id")
    question = _element_text(root.find("questionText"))
    if not question:
        raise SkipFile("no_question_text")
    refs = []
    for index, ref in enumerate(root.iter("referenceAnswer")):
        text, category = _element_text(ref), (ref.get("category") or "").strip().upper()
        if text:  # no category (SciEntsBank): as good as BEST; an unknown one: after KEYWORD
            refs.append((REFERENCE_RANK.get(category, len(REFERENCE_RANK)) if category else 0,
                         index, text))
    references = list(dict.fromkeys(text for _, _, text in sorted(refs)))  # best first, unique
    if not references:
        raise SkipFile("no_reference_answer")
    corpus = _corpus_of(root, corpus)
    module = _clean(root.get("module")) or "unknown"
    exercise = Exercise(id=qid, subject=f"{corpus}/{module}"[:40],
                        grade_band=GRADE_BANDS.get(corpus, ""), question=question,
                        reference_answers=tuple(references))
    answers = []
    for item in root.iter("studentAnswer"):
        item_where = f"{where}:{item.get('id') or qid}"
        label = (item.get("accuracy") or "").strip().lower()
        text = _element_text(item)
        if label not in labels:
            if report is not None:
                report.skip_item("unknown_label", f"{item_where} ({label or 'none'})")
            continue
        if not text:
            if report is not None:
                report.skip_item("empty_answer", item_where)
            continue
        answers.append(LabelledAnswer(qid, text, label))
    return exercise, answers


def semeval_files(path: Path) -> list[Path]:
    """The XML files of one split directory (or a single file); refuses what holds none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path} not found", hint=SEMEVAL_HINT)
    files = sorted(p for p in path.glob("*.xml") if p.is_file())
    if not files:
        nested = sorted({p.parent.name for p in path.glob("*/*.xml")})
        if nested:
            raise DatasetError(f"{path} holds no XML files itself, only in its subdirectories "
                               f"{', '.join(nested)}", hint="point at one split, e.g. "
                               f"{path / nested[0]}")
        looks_wikiqa = all((path / name).is_file() for name in WIKIQA_FILES)
        raise DatasetError(f"{path} holds no SemEval XML files",
                           hint="it holds a WikiQA split: use --format wikiqa" if looks_wikiqa
                           else SEMEVAL_HINT)
    return files


def read_semeval(path: Path, *, corpus: str | None = None,
                 labels: Sequence[str] = SEMEVAL_LABELS) -> SemEvalData:
    """Every question of a SemEval-2013 Task 7 split directory (one XML file per question).

    Malformed files and answers with unknown labels are skipped with a counted reason; a
    path with no XML files, or no usable question at all, is refused.
    """
    path = Path(path)
    if corpus is not None and corpus not in GRADE_BANDS:
        raise DatasetError(f"unknown SemEval corpus {corpus!r}",
                           hint=f"use one of {', '.join(GRADE_BANDS)}")
    corpus = corpus or detect_corpus(path)
    report = ReadReport(source=str(path))
    exercises: dict[str, Exercise] = {}
    answers: list[LabelledAnswer] = []
    for file in semeval_files(path):
        own = ReadReport(source=file.name)  # this file's skipped answers, kept if the file is
        try:
            try:
                if file.stat().st_size > MAX_XML_BYTES:
                    raise SkipFile("file_too_large")
                data = file.read_bytes()
            except OSError:
                raise SkipFile("unreadable_file") from None
            exercise, items = parse_semeval_question(data, corpus=corpus, labels=labels,
                                                     where=file.name, report=own)
            if exercise.id in exercises:
                raise SkipFile("duplicate_question_id")
        except SkipFile as skip:
            report.skip_file(str(skip), file.name)
            continue
        exercises[exercise.id] = exercise
        answers.extend(items)
        report.files_read += 1
        report.items_skipped += own.items_skipped
        report.skipped.update(own.skipped)
        for reason, where in own.first_skipped.items():
            report.first_skipped.setdefault(reason, where)
    report.questions, report.items_read = len(exercises), len(answers)
    if not answers:
        raise DatasetError(f"{path} holds no usable labelled answers "
                           f"(skipped: {_summary(report.skipped) or 'nothing'})",
                           hint=SEMEVAL_HINT)
    return SemEvalData(list(exercises.values()), answers, report)


def _summary(counts: collections.Counter) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text", hint=WIKIQA_HINT) from None
    lines = text.split("\n")  # not splitlines(): the sentences hold \u2028 and friends
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_wikiqa(path: Path) -> WikiQAData:
    """A WikiQA split (a.toks, b.toks, sim.txt, id.txt; one line per candidate pair), grouped
    by question in the order questions first appear. Lines with a label other than 0/1 or an
    empty text are skipped and counted; files whose line counts differ are refused."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} not found or not a directory", hint=WIKIQA_HINT)
    missing = [name for name in WIKIQA_FILES if not (path / name).is_file()]
    if missing:
        looks_semeval = next(path.glob("*.xml"), None) is not None
        raise DatasetError(f"{path} lacks {', '.join(missing)}",
                           hint="it holds XML files: use --format semeval" if looks_semeval
                           else WIKIQA_HINT)
    columns = {name: _lines(path / name) for name in WIKIQA_FILES}
    counts = {name: len(lines) for name, lines in columns.items()}
    if len(set(counts.values())) != 1:
        raise DatasetError(f"the WikiQA files in {path} have different line counts: "
                           + ", ".join(f"{name} {n}" for name, n in counts.items()),
                           hint="each file holds one line per candidate pair; restore the "
                                "split from its source")
    report = ReadReport(source=str(path), unit="pairs", files_read=len(WIKIQA_FILES))
    groups: dict[str, QAGroup] = {}
    for number, (question, candidate, sim, qid) in enumerate(
            zip(*(columns[name] for name in WIKIQA_FILES)), start=1):
        where = f"line {number}"
        qid, question, candidate, sim = qid.strip(), _clean(question), _clean(candidate), sim.strip()
        if sim not in ("0", "1"):
            report.skip_item("bad_label", f"{where} ({sim or 'empty'})")
            continue
        if not qid:
            report.skip_item("missing_question_id", where)
            continue
        if not question or not candidate:
            report.skip_item("empty_text", where)
            continue
        group = groups.get(qid)
        if group is None:
            group = groups[qid] = QAGroup(qid, question, [])
        elif group.question != question:
            report.skip_item("question_text_differs", where)
            continue
        group.candidates.append((candidate, int(sim)))
        report.items_read += 1
    report.questions = len(groups)
    if not groups:
        raise DatasetError(f"{path} holds no usable question/candidate pairs "
                           f"(skipped: {_summary(report.skipped) or 'nothing'})", hint=WIKIQA_HINT)
    return WikiQAData(list(groups.values()), report)


def load_dataset(path: Path, fmt: str, labels: Sequence[str] | None = None
                 ) -> SemEvalData | WikiQAData:
    """A SemEval or WikiQA split. ``labels``: the SemEval label set to read (the model's:
    2-way by default, 3- or 5-way for a model trained on those)."""
    if fmt == "semeval":
        return read_semeval(path, labels=tuple(labels) if labels else SEMEVAL_LABELS)
    if fmt == "wikiqa":
        return read_wikiqa(path)
    raise DatasetError(f"unknown dataset format {fmt!r}", hint="use --format semeval or wikiqa")


