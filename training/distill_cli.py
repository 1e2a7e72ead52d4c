"""``chalkbox train distill``: a smaller, faster grader taught by a trained one (training/distill.py).

Also where the unlabelled pairs come from (``--unlabelled``): the field data a box sends (a sync
bundle, or the central store), or teacher content / a SemEval split whose labels are ignored.
The pairs are built with the teacher's ``input_format`` (appliance.inference.pairs), exactly as
the box will build them for the student.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import click

from appliance.cli_types import existing_dir, new_dir
from appliance.inference.pairs import grade_pair

from .errors import TrainingError

STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def record_pairs(records: Iterable, input_format: str) -> list[tuple[str, str]]:
    """The grading pair of every answer or grade record that carries its reference and answer
    (whatever it was predicted or labelled: the teacher grades it again)."""
    from .data.labels import graded_texts

    return [grade_pair(input_format, *texts) for texts in graded_texts(records)]


def _content_pairs(content_dir: Path, input_format: str) -> list[tuple[str, str]]:
    """exercises.csv + answers.csv, the label column ignored (it may be absent or empty)."""
    from appliance.content import read_exercises

    exercises = {e.id: e for e in read_exercises(content_dir / "exercises.csv")}
    path = content_dir / "answers.csv"
    if not path.is_file():
        raise TrainingError(f"{content_dir} has exercises.csv but no answers.csv",
                            hint="answers.csv needs the columns exercise_id,answer")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    if not {"exercise_id", "answer"} <= set(reader.fieldnames or ()):
        raise TrainingError(f"{path} lacks the columns exercise_id,answer")
    pairs = []
    for row in reader:
        exercise = exercises.get(row["exercise_id"])
        if exercise is None:
            raise TrainingError(f"{path} line {reader.line_num}: unknown exercise_id "
                                f"{row['exercise_id']!r}", hint="add it to exercises.csv")
        if (row["answer"] or "").strip():
            pairs += [grade_pair(input_format, exercise.question, reference, row["answer"])
                      for reference in exercise.reference_answers]
    return pairs


def read_unlabelled_pairs(path: Path, input_format: str) -> list[tuple[str, str]]:
    """Grading pairs from ``path``, whatever labels it holds: a central store (``.db``), a sync
    bundle (``records.jsonl`` + ``manifest.json``, verified), a content dir or a SemEval
    split (a directory of XML files, or one file)."""
    path = Path(path)
    if path.is_file() and path.suffix in STORE_SUFFIXES:
        from .store import CentralStore

        with CentralStore(path) as store:
            return record_pairs(store.records(), input_format)
    if (path / "records.jsonl").is_file():
        from appliance.syncbundle import read_sync_bundle

        return record_pairs(read_sync_bundle(path)[1], input_format)
    if (path / "exercises.csv").is_file():
        return _content_pairs(path, input_format)
    if path.suffix == ".xml" or (path.is_dir() and any(path.glob("*.xml"))):
        from appliance.inference.pairs import labelled_grade_pairs

        from .data.semeval import read_semeval

        data = read_semeval(path)
        return labelled_grade_pairs(data.exercises, data.answers, input_format)[0]
    raise TrainingError(f"cannot tell what {path} holds",
                        hint="give a central store (.db), a sync bundle, a content dir with "
                             "exercises.csv + answers.csv, or a SemEval split")


def _layer_list(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected teacher layer indices like 0,2,4, got {value!r}")


@click.command()
@click.option("--teacher", "teachers", required=True, multiple=True, type=existing_dir,
              help="A trained checkpoint; repeat for an ensemble (their mean is the target).")
@click.option("--data", "data_dir", type=existing_dir,
              help="Labelled data: a content dir (default: the demo content), a SemEval split "
                   "or a WikiQA split.")
@click.option("--format", "data_format", type=click.Choice(("content", "semeval", "wikiqa")),
              default="content", show_default=True,
              help="The format of --data and --eval-data (wikiqa: distil a matcher).")
@click.option("--eval-fraction", type=click.FloatRange(0.0, 0.9), default=0.15, show_default=True,
              help="Share of --data's exercises held out for validation (none with --eval-data).")
@click.option("--eval-data", type=existing_dir,
              help="Validate on this set instead (e.g. SemEval test-unseen-answers).")
@click.option("--calibration-fraction", type=click.FloatRange(0.0, 0.5), default=0.0,
              show_default=True,
              help="Grading: share of the training questions' answers held out to fit the "
                   "student's temperature on (0: fit it on the validation set).")
@click.option("--unlabelled", "unlabelled_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Pairs the teacher labels (soft targets only): a central store (.db), a sync "
                   "bundle, a content dir or a SemEval split; labels in it are ignored. Repeatable.")
@click.option("--layers", callback=_layer_list,
              help="Teacher layers the student keeps, e.g. 0,2,4.")
@click.option("--num-layers", type=click.IntRange(min=1),
              help="Keep this many evenly spaced teacher layers (default: every other one).")
@click.option("--student-base", type=existing_dir,
              help="Start the student from this smaller checkpoint instead of a cut teacher.")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Weight of the gold-label cross-entropy; 1 - alpha goes to the teacher's.")
@click.option("--temperature", type=click.FloatRange(min=0.0, min_open=True), default=2.0,
              show_default=True)
@click.option("--ensemble", type=click.Choice(("logits", "probabilities")), default="logits",
              show_default=True, help="Average the teachers' logits or their probabilities.")
@click.option("--hidden-loss", "hidden_loss_weight", type=click.FloatRange(min=0.0), default=0.0,
              show_default=True, help="Weight of the [CLS] hidden-state loss (same hidden size).")
@click.option("--out", "out_dir", required=True, type=new_dir)
@click.option("--epochs", type=click.FloatRange(min=0.01), default=3.0, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=5e-5, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(8, 4096),
              help="Tokens per pair for the student (default: the teacher's).")
@click.option("--model-id", help="The student's model id (default: the teacher's).")
@click.option("--seed", type=int, default=42, show_default=True)
def distill(teachers, data_dir, data_format, eval_fraction, eval_data, calibration_fraction,
            unlabelled_paths, out_dir, **settings):
    """Distil a teacher (or an ensemble) into a smaller student checkpoint."""
    from .distill import DistillConfig, distill as run_distill, ensemble_info

    if data_format != "content" and data_dir is None:
        raise click.UsageError(f"--format {data_format} needs --data (a split directory)")
    info = ensemble_info([Path(t) for t in teachers])
    wanted = "match" if data_format == "wikiqa" else "grade"
    if info.task != wanted:
        raise TrainingError(f"--format {data_format} distils a {wanted} model; the teacher's "
                            f"task is {info.task!r}",
                            hint="use --format wikiqa for a matcher, content or semeval for a "
                                 "grader")
    calibration = None
    if data_format == "wikiqa":
        if calibration_fraction:
            raise click.UsageError("--calibration-fraction is for graders (content, semeval)")
        train, evaluation, snapshot = _match_data(data_dir, eval_data, eval_fraction,
                                                  settings["seed"])
    else:
        train, evaluation, calibration, snapshot = _grade_data(
            data_dir, data_format, eval_data, eval_fraction, settings["seed"],
            info.input_format, calibration_fraction)
    config = DistillConfig(output_dir=out_dir, teachers=teachers, dataset_snapshot=snapshot,
                           **settings)
    unlabelled = [pair for path in unlabelled_paths
                  for pair in read_unlabelled_pairs(path, info.input_format)]
    metrics = run_distill(config, train, evaluation if evaluation[0] else None, unlabelled,
                          calibration if calibration and calibration[0] else None)
    click.echo(f"student written to {out_dir}; validation: {metrics}")


def _grade_data(data_dir, data_format, eval_data, eval_fraction, seed, input_format,
                calibration_fraction=0.0):
    """Cleaned, label-resolved training pairs (training.data.dataset), validation held out by
    question or read from --eval-data as published, and calibration answers held out of the
    training questions (none unless asked)."""
    from appliance.inference.pairs import labelled_grade_pairs

    from .recipes import grading_dataset, read_grading_data

    dataset = grading_dataset(data_dir, data_format, seed=seed,
                              eval_fraction=0.0 if eval_data else eval_fraction,
                              calibration_fraction=calibration_fraction)
    train = labelled_grade_pairs(dataset.exercises, dataset.train, input_format)
    calibration = labelled_grade_pairs(dataset.exercises, dataset.calibration, input_format)
    if eval_data:
        evaluation = labelled_grade_pairs(*read_grading_data(eval_data, data_format), input_format)
    else:
        evaluation = labelled_grade_pairs(dataset.exercises, dataset.evaluation, input_format)
    return train, evaluation, calibration, dataset.snapshot


def _match_data(data_dir, eval_data, eval_fraction, seed):
    """WikiQA (question, candidate) pairs; whole questions held out for validation."""
    from .data.splits import snapshot_id, split_by_group
    from .data.wikiqa import match_pairs, read_wikiqa

    groups = read_wikiqa(Path(data_dir)).groups
    if eval_data:
        train_groups, eval_groups = groups, read_wikiqa(Path(eval_data)).groups
    else:
        train_groups, eval_groups = split_by_group(groups, lambda g: g.question_id,
                                                   eval_fraction, seed)
    train = match_pairs(train_groups)
    snapshot = snapshot_id({"question": q, "candidate": c, "label": y}
                           for (q, c), y in zip(*train))
    return train, match_pairs(eval_groups), snapshot
