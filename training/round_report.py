"""The round report: one self-contained HTML page for a programme manager.

What came in, what labels were added, how labels and the boxes' confidences were
distributed, the figures per slice before (production) and after (candidate), and whether
the candidate was promoted and why. Everything is drawn from ``round.json`` and the files
its stages wrote; plots are PNGs embedded as data URIs, so the page works offline.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from appliance.fsutil import atomic_write_text

from .report import figure_png, html_image, html_table
from .round_state import RoundState


def _bar_plot(title: str, counts: dict[str, int]) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.5, 2.6))
    axis = figure.subplots()
    axis.bar(list(counts), list(counts.values()), color="#3b6ea5")
    axis.set_title(title)
    return html_image(title, figure_png(figure))


def _slice_plot(changes: list[dict[str, Any]]) -> str:
    from matplotlib.figure import Figure

    names = [f"{c['name']}" for c in changes]
    figure = Figure(figsize=(6, 0.35 * len(names) + 1.2))
    axis = figure.subplots()
    ys = range(len(names))
    axis.barh([y + 0.2 for y in ys], [c["production"] for c in changes], height=0.4,
              label="production", color="#999999")
    axis.barh([y - 0.2 for y in ys], [c["candidate"] for c in changes], height=0.4,
              label="candidate", color="#3b6ea5")
    axis.set_yticks(list(ys), names)
    axis.set_xlabel("macro-F1")
    axis.legend(loc="lower right")
    return html_image("macro-F1 per slice", figure_png(figure))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    """training.report's table; an absent figure shows as an empty cell."""
    return html_table(header, [["" if cell is None else cell for cell in row] for row in rows])


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _teacher_base(teacher: dict[str, Any]) -> str | None:
    if teacher.get("continued_from"):
        return f"{teacher['continued_from']}'s teacher (production's)"
    if teacher.get("from_base_because"):
        return f"the base model: {teacher['from_base_because']}"
    return None


def write_round_report(state: RoundState, path: Path) -> Path:
    stages = state.stages
    snapshot = stages.get("snapshot", {})
    decision = stages.get("decide", {})
    evaluated = stages.get("evaluate", {})
    parts = [f"<h1>Training round {html.escape(state.round_id)}</h1>",
             f"<p>started {html.escape(state.started_at)}</p>"]
    verdict = "PROMOTED" if decision.get("promote") else "NOT PROMOTED"
    parts.append(f"<h2 class='verdict'>{verdict}</h2><ul>"
                 + "".join(f"<li>{html.escape(r)}</li>" for r in decision.get("reasons", []))
                 + "</ul>")
    published = stages.get("publish", {}).get("published")
    if published:
        parts.append(f"<p>Published as <code>{html.escape(published)}</code>.</p>")

    ingest = stages.get("ingest", {})
    report = snapshot.get("report", {})
    parts.append("<h2>Data in</h2>")
    parts.append(_table([["records in the central store", ingest.get("records_in_store")],
                         ["USB sticks ingested", len(ingest.get("sticks", []))],
                         ["dataset snapshot", snapshot.get("snapshot")],
                         ["training answers", snapshot.get("train")],
                         ["validation answers", snapshot.get("validation")],
                         ["teacher labels from the field", snapshot.get("field_labels")],
                         ["teacher trained from", _teacher_base(stages.get("teacher", {}))]],
                        ["", "value"]))
    cleaning, labels = report.get("cleaning", {}), report.get("labels", {})
    sections = [("records in the store, by kind", ingest.get("records_by_kind", {}), False),
                ("dropped while cleaning", cleaning.get("dropped", {}), False),
                ("label sources used", labels.get("used", {}), False),
                ("label conflicts, by rule", labels.get("conflicts", {}), False),
                ("training labels", report.get("labels_by_class", {}), True),
                ("the boxes' grade confidences", ingest.get("confidences", {}), True)]
    for title, counts, plot in sections:
        numeric = {str(k): v for k, v in counts.items() if isinstance(v, (int, float))}
        if not numeric:
            continue
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(_table(sorted(numeric.items()), ["", "count"]))
        if plot:
            parts.append(_bar_plot(title, numeric))

    parts.append("<h2>Evaluation on the fixed set</h2>")
    rows = []
    for role in ("production", "candidate"):
        figures = evaluated.get(role) or {}
        rows.append([role, figures.get("version"), figures.get("n"), figures.get("accuracy"),
                     figures.get("macro_f1"), figures.get("ece")])
    parts.append(_table(rows, ["model", "version", "n", "accuracy", "macro-F1", "ECE"]))
    changes = decision.get("slice_changes", [])
    if changes:
        parts.append("<h3>Per slice (macro-F1)</h3>")
        parts.append(_table([[c["slice"], c["name"], c["n"], c["production"], c["candidate"],
                              c["change"]] for c in changes],
                            ["slice", "name", "n", "production", "candidate", "change"]))
        parts.append(_slice_plot(changes))
    export = stages.get("export", {})
    if export.get("problem"):
        parts.append(f"<p>Export refused: {html.escape(export['problem'])}</p>")
    elif export.get("checks"):
        parts.append("<h3>Export checks</h3>")
        parts.append(_table(sorted(export["checks"].items()), ["check", "value"]))

    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:.2em .6em;text-align:left}.verdict{color:#1d4f7c}")
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Round {html.escape(state.round_id)}</title><style>{style}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    atomic_write_text(Path(path), page)
    return Path(path)
