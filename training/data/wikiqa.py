"""WikiQA (Yang et al. 2015) for training and evaluating the ``match`` task.

A split directory holds four files with one line per candidate pair: ``a.toks`` the question,
``b.toks`` the candidate sentence, ``sim.txt`` 1 if the sentence answers the question, else 0,
``id.txt`` the question's id (see ../shared/datasets/README.md). The reader groups the pairs by
question, in the order questions first appear:
``QAGroup(question_id, question, [(candidate, label), ...])``.

The parsing is in ``export/datasets.py`` (``chalkbox export evaluate`` reads WikiQA too and may
not import training); here its errors become :class:`TrainingError`. Files whose line counts
differ are refused naming each file and its count; a line with a label other than 0/1 or an
empty text is skipped and counted in the report.
"""
from __future__ import annotations

from pathlib import Path

from export import datasets as _core
from export.datasets import QAGroup, ReadReport, WikiQAData  # noqa: F401  (re-exported)

from ..errors import TrainingError


def read_wikiqa(path: Path) -> WikiQAData:
    """``.groups`` (QAGroup items) and ``.report`` of one WikiQA split directory."""
    try:
        return _core.read_wikiqa(Path(path))
    except _core.DatasetError as exc:
        raise TrainingError(exc.message, hint=exc.hint) from None


def match_pairs(groups: list[QAGroup], positive: str = "match", negative: str = "other"
                ) -> tuple[list[tuple[str, str]], list[str]]:
    """(pairs, labels) for the ``match`` task: (question, candidate) -> match / other."""
    pairs, labels = [], []
    for group in groups:
        for candidate, label in group.candidates:
            pairs.append((group.question, candidate))
            labels.append(positive if label else negative)
    return pairs, labels
