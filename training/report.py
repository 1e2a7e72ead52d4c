"""The HTML report of one training run: OUT/report.html, one self-contained file.

Plots are PNGs rendered with matplotlib's Agg canvas (no display, no pyplot global state) and
embedded as base64 data URIs, so the file opens offline, from a USB stick, with no assets.
The figures come from pure functions over the Trainer's log history and the validation logits;
the metrics are export.metrics', the same the evaluate commands print.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from export.metrics import ECE_BINS, classification_metrics

from .calibration import confidences_and_hits

REPORT_FILE = "report.html"


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """What the final model did on the validation set: raw logits (before temperature),
    true class indices, the fitted temperature and the metrics finetune() returned."""
    labels: tuple[str, ...]
    logits: np.ndarray
    truth: np.ndarray
    temperature: float = 1.0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- pure data

def learning_curves(log_history: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """(epoch, value) series from the Trainer's log history: the training loss as logged
    every few steps, and the validation loss and macro-F1 after each evaluation."""
    wanted = {"train_loss": "loss", "eval_loss": "eval_loss", "eval_macro_f1": "eval_macro_f1"}
    curves: dict[str, list[tuple[float, float]]] = {name: [] for name in wanted}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        for name, key in wanted.items():
            if key in entry:
                curves[name].append((float(entry["epoch"]), float(entry[key])))
    return curves


def reliability_bins(confidences, hits, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per non-empty confidence bin: its range, mean confidence, accuracy and count; the
    bins of export.metrics.expected_calibration_error ((k/n, (k+1)/n], 0 in the first)."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(hits, dtype=np.float64)
    index = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = index == b
        if mask.any():
            rows.append({"low": b / n_bins, "high": (b + 1) / n_bins,
                         "confidence": float(conf[mask].mean()),
                         "accuracy": float(right[mask].mean()), "count": int(mask.sum())})
    return rows


# --------------------------------------------------------------------------- figures

def figure_png(figure) -> str:
    """A matplotlib Figure (no pyplot state) as base64 PNG, for :func:`html_image`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _learning_curve_png(curves) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6))
    loss_axes, f1_axes = figure.subplots(1, 2)
    for name, label, style in (("train_loss", "training loss", "-"),
                               ("eval_loss", "validation loss", "o-")):
        if curves[name]:
            loss_axes.plot(*zip(*curves[name]), style, label=label)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="Loss")
    if curves["train_loss"] or curves["eval_loss"]:
        loss_axes.legend()
    if curves["eval_macro_f1"]:
        f1_axes.plot(*zip(*curves["eval_macro_f1"]), "o-", color="tab:green")
    else:
        f1_axes.text(0.5, 0.5, "no validation set", ha="center", va="center")
    f1_axes.set(xlabel="epoch", ylabel="macro-F1", title="Validation macro-F1", ylim=(0, 1))
    return figure_png(figure)


def _confusion_png(matrix: list[list[int]], labels: Sequence[str]) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 3.8))
    axes = figure.subplots()
    values = np.asarray(matrix)
    axes.imshow(values, cmap="Blues")
    for (row, col), count in np.ndenumerate(values):
        axes.text(col, row, str(count), ha="center", va="center",
                  color="white" if count > values.max() / 2 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set(xlabel="predicted", ylabel="true", title="Confusion matrix (validation)")
    return figure_png(figure)


def _reliability_png(before: list[dict], after: list[dict], temperature: float) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6, 4.2))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for rows, label, style in ((before, "before (T = 1)", "s-"),
                               (after, f"after (T = {temperature:.2f})", "o-")):
        if rows:
            axes.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], style,
                      label=label)
    axes.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
             title="Reliability diagram (validation)")
    axes.legend(loc="upper left")
    return figure_png(figure)


# --------------------------------------------------------------------------- HTML

def html_image(title: str, data: str) -> str:
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:4px 10px;text-align:right}th{background:#f3f3f3}"
          "figure{display:inline-block;margin:1em}figcaption{text-align:center}")


def render_report(title: str, log_history: Sequence[dict],
                  evaluation: ValidationResult | None) -> str:
    """The report as one HTML string (no external links or assets)."""
    sections = [html_image("Learning curves", _learning_curve_png(learning_curves(log_history)))]
    if evaluation is not None:
        labels = list(evaluation.labels)
        truth = [labels[i] for i in np.asarray(evaluation.truth)]
        confidence, hits = confidences_and_hits(evaluation.logits, evaluation.truth,
                                                evaluation.temperature)
        predicted = [labels[i] for i in np.asarray(evaluation.logits).argmax(axis=1)]
        figures = classification_metrics(truth, predicted, confidence, labels)
        raw_confidence, raw_hits = confidences_and_hits(evaluation.logits, evaluation.truth)
        sections.append(html_image("Confusion matrix",
                               _confusion_png(figures["confusion_matrix"], labels)))
        sections.append(html_image("Reliability diagram", _reliability_png(
            reliability_bins(raw_confidence, raw_hits), reliability_bins(confidence, hits),
            evaluation.temperature)))
        scalars = {**{k: figures[k] for k in ("n", "accuracy", "precision", "recall",
                                               "macro_f1", "weighted_f1")},
                   **{k: v for k, v in evaluation.metrics.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        sections.append("<h2>Validation metrics</h2>"
                        + html_table(("metric", "value"), sorted(scalars.items())))
        sections.append(html_table(("label", "precision", "recall", "F1", "support"),
                               [(label, c["precision"], c["recall"], c["f1"], c["support"])
                                for label, c in figures["per_class"].items()]))
    else:
        sections.append("<p>No validation set: learning curves only.</p>")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n")


def write_report(out_dir: Path, log_history: Sequence[dict],
                 evaluation: ValidationResult | None) -> Path:
    """Write OUT/report.html and return its path."""
    out_dir = Path(out_dir)
    path = out_dir / REPORT_FILE
    path.write_text(render_report(f"Training run: {out_dir.name}", log_history, evaluation),
                    encoding="utf-8")
    return path
