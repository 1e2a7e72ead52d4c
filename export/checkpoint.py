"""What a trained checkpoint says about itself (``chalkbox.json`` beside the weights).

Training writes it; export reads it to fill the bundle's manifest. A plain Hugging
Face checkpoint without it still exports: labels then come from its config and
the rest from defaults or flags.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from appliance.bundle import INPUT_FORMATS, TASKS
from appliance.errors import FormatError

from .errors import ExportError

INFO_FILE = "chalkbox.json"


@dataclasses.dataclass
class CheckpointInfo:
    task: str = "grade"
    labels: tuple[str, ...] = ("incorrect", "correct")
    positive_label: str = "correct"
    input_format: str = "reference|answer"
    max_length: int = 128
    model_id: str = "grade"
    base_model: str | None = None
    dataset_snapshot: str | None = None
    temperature: float = 1.0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.labels = tuple(self.labels)
        if self.task not in TASKS:
            raise FormatError(f"'task' must be one of {TASKS}", field="task")
        if self.input_format not in INPUT_FORMATS:
            raise FormatError(f"'input_format' must be one of {INPUT_FORMATS}", field="input_format")
        if self.positive_label not in self.labels:
            raise FormatError("'positive_label' must be one of 'labels'", field="positive_label")

    def save(self, model_dir: Path) -> None:
        data = {**dataclasses.asdict(self), "labels": list(self.labels)}
        (Path(model_dir) / INFO_FILE).write_text(json.dumps(data, indent=2) + "\n")


def read_checkpoint_info(model_dir: Path) -> CheckpointInfo:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir} is not a Hugging Face checkpoint (no config.json)",
                          hint="point --model at a directory written by 'chalkbox train'")
    path = model_dir / INFO_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return CheckpointInfo(**data)
        except (ValueError, TypeError) as exc:
            raise ExportError(f"{path} is not a valid checkpoint description: {exc}")
    config = json.loads((model_dir / "config.json").read_text())
    id2label = config.get("id2label") or {}
    labels = tuple(id2label[k] for k in sorted(id2label, key=int)) or ("incorrect", "correct")
    if set(labels) != {"incorrect", "correct"}:
        raise ExportError(f"{model_dir} has labels {labels} and no {INFO_FILE}",
                          hint=f"write a {INFO_FILE} naming the task, labels and positive label")
    return CheckpointInfo(labels=labels, base_model=str(model_dir))
