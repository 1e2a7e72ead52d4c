"""Evaluation on real datasets (SemEval-2013 Task 7, WikiQA), one implementation for both CLIs.

Why it lives here. ``chalkbox export evaluate`` measures a verified bundle through the box's own
``OnnxModel`` and may not import ``training`` (appliance <- export <- training), while
``chalkbox train evaluate`` measures a PyTorch checkpoint. Both must print the same metrics,
computed by the same code, so that code sits in the lower of the two layers that need it: here.
This module holds

- the dataset readers' core: SemEval-2013 Task 7 XML and WikiQA (stdlib + ``appliance.content``
  types; pure: a path in, ``Exercise``/``LabelledAnswer`` or ``QAGroup`` items out, with a
  :class:`ReadReport` of what was read and what was skipped for which reason);
- the metrics, as pure functions over labels, probabilities and rankings (scikit-learn,
  imported inside the functions that use it);
- :func:`evaluate_model`: anything with ``.manifest`` (a ``ModelManifest``) and
  ``.probabilities(pairs)``, so the box's ``OnnxModel`` and the centre's PyTorch adapter
  (``training/evaluate.py``) are measured identically.

``training`` re-uses all of it: ``training/data/semeval.py`` and ``training/data/wikiqa.py`` are
the training-facing readers (their errors are ``TrainingError``), ``training/evaluate.py`` adds
the PyTorch checkpoint adapter. Nothing here imports torch or training, so a bundle is evaluated
without torch. Not in ``appliance``: the box never reads these datasets and scikit-learn is not
one of its dependencies.
"""
from __future__ import annotations

import collections
import dataclasses
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from appliance.content import ID_RE, Exercise, LabelledAnswer
from appliance.inference.pairs import grade_pair

from .errors import ExportError

FORMATS = ("semeval", "wikiqa")
SEMEVAL_LABELS = ("correct", "incorrect")
#: Grade band of each SemEval corpus: SciEntsBank is grades 3-6, Beetle is high-school physics.
GRADE_BANDS = {"sciEntsBank": "3-6", "beetle": "9-12"}
#: Beetle reference answers carry a category; the best come first.
REFERENCE_RANK = {"BEST": 0, "GOOD": 1, "MINIMAL": 2, "KEYWORD": 3}
MAX_XML_BYTES = 16 * 1024 * 1024
WIKIQA_FILES = ("a.toks", "b.toks", "sim.txt", "id.txt")
ECE_BINS = 15
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


def load_dataset(path: Path, fmt: str) -> SemEvalData | WikiQAData:
    if fmt == "semeval":
        return read_semeval(path)
    if fmt == "wikiqa":
        return read_wikiqa(path)
    raise DatasetError(f"unknown dataset format {fmt!r}", hint="use --format semeval or wikiqa")


# --------------------------------------------------------------------------- metrics


def accuracy(truth: Sequence, predicted: Sequence) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(truth, predicted))


def precision(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro"
              ) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(truth, predicted, labels=list(labels), average=average,
                                 zero_division=0))


def recall(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro"
           ) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(truth, predicted, labels=list(labels), average=average,
                              zero_division=0))


def f1(truth: Sequence, predicted: Sequence, labels: Sequence, average: str = "macro") -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, labels=list(labels), average=average,
                          zero_division=0))


def macro_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> float:
    return f1(truth, predicted, labels, "macro")


def weighted_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> float:
    return f1(truth, predicted, labels, "weighted")


def per_class_f1(truth: Sequence, predicted: Sequence, labels: Sequence) -> dict[str, float]:
    from sklearn.metrics import f1_score

    scores = f1_score(truth, predicted, labels=list(labels), average=None, zero_division=0)
    return {str(label): float(score) for label, score in zip(labels, scores)}


def confusion_matrix(truth: Sequence, predicted: Sequence, labels: Sequence) -> list[list[int]]:
    """Rows: the true label, columns: the predicted one, both in ``labels`` order."""
    from sklearn.metrics import confusion_matrix as matrix

    return matrix(truth, predicted, labels=list(labels)).astype(int).tolist()


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               n_bins: int = ECE_BINS) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins
    (``(k/n, (k+1)/n]``, a confidence of 0 in the first) weighted by how many fall in each."""
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.shape != hits.shape:
        raise ValueError("confidences and correct differ in length")
    if conf.size == 0:
        return 0.0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(hits[mask].mean() - conf[mask].mean())
    return float(total / conf.size)


def ranking(scores: Sequence[float], labels: Sequence[int]) -> list[int]:
    """The labels in order of decreasing score (ties keep the candidates' order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(labels[i]) for i in order]


def average_precision(ranked_labels: Sequence[int]) -> float:
    """AP of one ranked list of 0/1 labels: the mean of precision at each relevant rank."""
    hits, total = 0, 0.0
    for rank, label in enumerate(ranked_labels, start=1):
        if label:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def reciprocal_rank(ranked_labels: Sequence[int]) -> float:
    for rank, label in enumerate(ranked_labels, start=1):
        if label:
            return 1.0 / rank
    return 0.0


def map_mrr(questions: Iterable[tuple[Sequence[float], Sequence[int]]]) -> dict[str, float]:
    """MAP and MRR over the questions that have at least one correct candidate (the WikiQA
    convention); ``questions``: (scores, 0/1 labels) per question."""
    aps, rrs = [], []
    for scores, labels in questions:
        if not any(labels):
            continue
        ranked = ranking(scores, labels)
        aps.append(average_precision(ranked))
        rrs.append(reciprocal_rank(ranked))
    return {"map": float(np.mean(aps)) if aps else 0.0,
            "mrr": float(np.mean(rrs)) if rrs else 0.0, "questions_ranked": len(aps)}


def classification_metrics(truth: Sequence[str], predicted: Sequence[str],
                           confidences: Sequence[float], labels: Sequence[str]
                           ) -> dict[str, Any]:
    """Every classification figure the evaluate commands print, for one set of predictions.
    precision and recall are macro averages; confidence is the probability of the prediction."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(labels)
    p, r, f, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                       average=None, zero_division=0)
    return {
        "n": len(truth),
        "labels": labels,
        "accuracy": accuracy(truth, predicted),
        "precision": precision(truth, predicted, labels),
        "recall": recall(truth, predicted, labels),
        "macro_f1": macro_f1(truth, predicted, labels),
        "weighted_f1": weighted_f1(truth, predicted, labels),
        "per_class_f1": per_class_f1(truth, predicted, labels),
        "per_class": {label: {"precision": float(p[i]), "recall": float(r[i]),
                              "f1": float(f[i]), "support": int(support[i])}
                      for i, label in enumerate(labels)},
        "confusion_matrix": confusion_matrix(truth, predicted, labels),
        "ece": expected_calibration_error(confidences,
                                          [t == q for t, q in zip(truth, predicted)]),
        "ece_bins": ECE_BINS,
    }


# --------------------------------------------------------------------------- a model on a dataset


def batched_probabilities(model, pairs: Sequence[tuple[str, str]], batch_size: int = 32
                          ) -> np.ndarray:
    """model.probabilities over many pairs, in batches of similar length (a batch pads every
    pair to its longest), returned in the pairs' order."""
    labels = len(model.manifest.labels)
    out = np.zeros((len(pairs), labels), dtype=np.float64)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        probs = np.asarray(model.probabilities([pairs[i] for i in rows]), dtype=np.float64)
        if probs.shape != (len(rows), labels):
            raise ExportError(f"the model returned probabilities of shape {probs.shape} for "
                              f"{len(rows)} pairs and {labels} labels")
        out[rows] = probs
    return out


def judge(manifest, rows: np.ndarray) -> tuple[str, float, int]:
    """The box's grading rule (appliance.inference.grade.grade_answer) on one answer's rows of
    probabilities, one per reference: the reference with the highest probability of the
    positive label decides; its most probable label is the grade. (label, confidence, index)."""
    positive = manifest.labels.index(manifest.positive_label)
    best = int(np.argmax(rows[:, positive]))
    row = rows[best]
    return manifest.labels[int(np.argmax(row))], float(row.max()), best


def _check_model(manifest, fmt: str, needed: Iterable[str]) -> None:
    if manifest.task == "embed":
        raise DatasetError(f"{manifest.name} is a sentence encoder (task embed); it has no labels "
                           "to evaluate", hint="evaluate a grade or match model")
    missing = [label for label in needed if label not in manifest.labels]
    if missing:
        raise DatasetError(f"{fmt} labels {', '.join(missing)} are not among the model's labels "
                           f"{', '.join(manifest.labels)}",
                           hint="evaluate a grader (correct/incorrect) on semeval, a 2-label "
                                "matcher on wikiqa")


def evaluate_model(model, data: SemEvalData | WikiQAData | Path | str, fmt: str, *,
                   limit: int | None = None, batch_size: int = 32) -> dict[str, Any]:
    """The metrics of ``model`` on a dataset (or a path to one) in format ``semeval`` or
    ``wikiqa``. ``model``: anything with ``.manifest`` and ``.probabilities(pairs)``."""
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}", hint="use --format semeval or wikiqa")
    if isinstance(data, (str, Path)):
        data = load_dataset(Path(data), fmt)
    expected = SemEvalData if fmt == "semeval" else WikiQAData
    if not isinstance(data, expected):
        raise DatasetError(f"the data given is not {fmt} data")
    data = data.limited(limit)
    started = time.perf_counter()
    result = (_evaluate_semeval if fmt == "semeval" else _evaluate_wikiqa)(model, data, batch_size)
    manifest = model.manifest
    result.update({
        "format": fmt,
        "limit": limit,
        "seconds": round(time.perf_counter() - started, 3),
        "model": {"model_id": manifest.model_id, "version": manifest.version,
                  "task": manifest.task, "input_format": manifest.input_format,
                  "temperature": manifest.temperature},
        "data": data.report.to_dict(),
    })
    return result


def _evaluate_semeval(model, data: SemEvalData, batch_size: int) -> dict[str, Any]:
    manifest = model.manifest
    _check_model(manifest, "semeval", sorted({a.label for a in data.answers}))
    by_id = {e.id: e for e in data.exercises}
    pairs, spans = [], []
    for item in data.answers:
        exercise = by_id[item.exercise_id]
        start = len(pairs)
        pairs += [grade_pair(manifest.input_format, exercise.question, ref, item.answer)
                  for ref in exercise.reference_answers]
        spans.append((start, len(pairs)))
    probs = batched_probabilities(model, pairs, batch_size)
    truth, predicted, confidences = [], [], []
    for item, (start, end) in zip(data.answers, spans):
        label, confidence, _ = judge(manifest, probs[start:end])
        truth.append(item.label)
        predicted.append(label)
        confidences.append(confidence)
    result = classification_metrics(truth, predicted, confidences, manifest.labels)
    result.update({"n_pairs": len(pairs), "n_questions": len(by_id)})
    return result


def _evaluate_wikiqa(model, data: WikiQAData, batch_size: int) -> dict[str, Any]:
    manifest = model.manifest
    if len(manifest.labels) != 2:
        raise DatasetError(f"wikiqa needs a 2-label model; {manifest.name} has "
                           f"{len(manifest.labels)} labels", hint="evaluate a match model")
    _check_model(manifest, "wikiqa", [])
    positive = manifest.labels.index(manifest.positive_label)
    negative_label = manifest.labels[1 - positive]
    pairs = [(g.question, candidate) for g in data.groups for candidate, _ in g.candidates]
    p_pos = batched_probabilities(model, pairs, batch_size)[:, positive]
    gold = [label for g in data.groups for _, label in g.candidates]
    truth = [manifest.positive_label if y else negative_label for y in gold]
    predicted = [manifest.positive_label if p >= 0.5 else negative_label for p in p_pos]
    confidences = [float(p) if p >= 0.5 else float(1 - p) for p in p_pos]
    result = classification_metrics(truth, predicted, confidences, manifest.labels)
    per_question, start = [], 0
    for group in data.groups:
        end = start + len(group.candidates)
        per_question.append((p_pos[start:end], [y for _, y in group.candidates]))
        start = end
    ranked = map_mrr(per_question)
    result.update({"map": ranked["map"], "mrr": ranked["mrr"],
                   "n_questions": len(data.groups),
                   "n_questions_ranked": ranked["questions_ranked"], "n_pairs": len(pairs),
                   "threshold": 0.5})
    return result


def render(result: dict[str, Any]) -> str:
    """The human-readable summary of an evaluate_model result (``--json`` prints it whole)."""
    model, data = result["model"], result["data"]
    lines = [f"{model['model_id']} {model['version']} on {data['source']} ({result['format']}): "
             f"{result['n']} examples, {result['n_pairs']} pairs, {result['seconds']} s"]
    figures = ["accuracy", "precision", "recall", "macro_f1", "weighted_f1", "ece"]
    if result["format"] == "wikiqa":
        figures += ["map", "mrr"]
    lines += [f"  {name:<12} {result[name]:.4f}" for name in figures]
    lines += [f"  f1 {label:<9} {value:.4f}" for label, value in result["per_class_f1"].items()]
    labels = result["labels"]
    lines.append("  confusion (rows true, columns predicted): " + ", ".join(labels))
    lines += [f"    {label:<10} {row}" for label, row in zip(labels, result["confusion_matrix"])]
    if data["skipped"]:
        lines.append("  skipped while reading: " + _summary(collections.Counter(data["skipped"])))
    return "\n".join(lines)
