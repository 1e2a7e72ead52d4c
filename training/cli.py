"""``chalkbox train ...`` (the centre) and ``chalkbox demo`` (the whole loop on one machine)."""
from __future__ import annotations

from pathlib import Path

import click

from appliance.cli_types import existing_dir, existing_file, new_dir
from export.cli import dataset_options

store_option = click.option(
    "--store", "store_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar="CHALKBOX_CENTRAL_STORE",
    help="The central SQLite store.  [default: CENTRE_DIR/chalkbox.db]")
centre_dir_option = click.option(
    "--centre-dir", type=new_dir, envvar="CHALKBOX_CENTRE_DIR", default="var/central",
    show_default=True, help="The centre's directory: chalkbox.db, published/, quarantine/.")


def finetune_options(command):
    """--out and the fine-tuning settings every training command takes."""
    for option in reversed([
        click.option("--out", "out_dir", required=True, type=new_dir),
        click.option("--base-model",
                     help="A local Hugging Face checkpoint (default: packaged MiniLM)."),
        click.option("--epochs", type=click.FloatRange(min=0.01), default=3.0, show_default=True),
        click.option("--lr", "learning_rate", type=float, default=5e-5, show_default=True),
        click.option("--batch-size", type=click.IntRange(1, 4096), default=16, show_default=True),
        click.option("--max-length", type=click.IntRange(8, 4096), default=128,
                     show_default=True),
        click.option("--seed", type=int, default=42, show_default=True),
        click.option("--lr-scheduler", type=click.Choice(("linear", "cosine")), default="linear",
                     show_default=True, help="Decay after the 10% warmup."),
        click.option("--early-stopping-patience", type=click.IntRange(min=0), default=0,
                     show_default=True,
                     help="Stop after N epochs without a better validation macro-F1 and keep "
                          "the best epoch (0: off; needs a validation set)."),
        click.option("--keep-checkpoints", type=click.IntRange(min=0), default=2,
                     show_default=True,
                     help="Epoch checkpoints kept in OUT/trainer for --resume (0: none)."),
        click.option("--resume", is_flag=True,
                     help="Continue from the newest checkpoint in OUT/trainer."),
        click.option("--class-weights", type=click.Choice(("none", "balanced")), default="none",
                     show_default=True, help="balanced: weight the loss against class imbalance."),
        click.option("--precision", type=click.Choice(("auto", "fp32", "bf16", "fp16")),
                     default="auto", show_default=True,
                     help="auto: bf16 on a GPU that has it, else fp16 on a GPU, fp32 on a CPU."),
        click.option("--report/--no-report", default=True, show_default=True,
                     help="Write OUT/report.html (curves, confusion matrix, calibration)."),
        click.option("--tensorboard/--no-tensorboard", default=True, show_default=True,
                     help="TensorBoard logs under OUT/runs."),
    ]):
        command = option(command)
    return command


def _label_set(ctx, param, value):
    """--labels "a,b,c" -> ("a", "b", "c"): distinct, at least two, 'correct' among them."""
    if value is None:
        return None
    labels = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise click.BadParameter("give at least two distinct labels, e.g. "
                                 "correct,contradictory,incorrect", ctx, param)
    if "correct" not in labels:
        raise click.BadParameter("one label must be 'correct' (the box's positive label)",
                                 ctx, param)
    return labels


@click.group()
def train() -> None:
    """At the centre: ingest what boxes send and train the next models."""


@train.command()
@click.option("--data", "data_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="The training data (repeatable, all of --format): a content dir, a SemEval "
                   "split, a teacher CSV/JSONL file or a central store. Default: the demo content.")
@finetune_options
@click.option("--eval-fraction", type=click.FloatRange(0.0, 0.9), default=0.15, show_default=True,
              help="Share of questions held out (whole questions, stratified by label).")
@click.option("--format", "data_format", type=click.Choice(("content", "semeval", "teacher",
                                                             "store")),
              default="content", show_default=True,
              help="content: exercises.csv + answers.csv; semeval: a SemEval-2013 2-way split; "
                   "teacher: a teacher-authored CSV/JSONL file; store: the central SQLite store.")
@click.option("--use-weak", is_flag=True,
              help="Also learn from students' thumbs up/down (weak labels; store data only).")
@click.option("--input-format", type=click.Choice(("reference|answer", "question+reference|answer")),
              default="reference|answer", show_default=True,
              help="What the cross-encoder reads (recorded in the checkpoint and the bundle).")
@click.option("--labels", "labels", callback=_label_set, metavar="A,B,...",
              help="The label set, comma-separated, one of them 'correct' (default: "
                   "incorrect,correct). SemEval 3-way: correct,contradictory,incorrect; "
                   "5-way: correct,partially_correct_incomplete,contradictory,irrelevant,"
                   "non_domain. Answers with other labels are skipped and counted.")
@click.option("--calibration-fraction", type=click.FloatRange(0.0, 0.5), default=0.0,
              show_default=True,
              help="Share of the training questions' answers held out to fit the temperature "
                   "on (the box's common case: new answers to known exercises). 0: fit it on "
                   "the held-out questions.")
def grade(data_paths, out_dir, eval_fraction, data_format, use_weak, input_format, labels,
          calibration_fraction, **settings):
    """Fine-tune a grading model on labelled answers (cleaned, split by question)."""
    from .recipes import train_grader

    if data_format != "content" and not data_paths:
        raise click.UsageError(f"--format {data_format} needs --data")
    if labels:
        settings["labels"] = labels
    metrics = train_grader(list(data_paths), out_dir, eval_fraction=eval_fraction,
                           data_format=data_format, use_weak=use_weak,
                           input_format=input_format,
                           calibration_fraction=calibration_fraction, **settings)
    click.echo(f"model written to {out_dir}; validation: {metrics}")


@train.command()
@click.option("--data", "data_dir", type=existing_dir,
              help="faq: a faq.csv's directory (default: the demo FAQ); wikiqa: a WikiQA split.")
@click.option("--format", "data_format", type=click.Choice(("faq", "wikiqa")), default="faq",
              show_default=True)
@finetune_options
def match(data_dir, data_format, out_dir, **settings):
    """Fine-tune the answer matcher behind "ask" (question, answer -> does it answer it)."""
    from .recipes import train_matcher, train_wikiqa_matcher

    if data_format == "wikiqa":
        if data_dir is None:
            raise click.UsageError("--format wikiqa needs --data (a split directory)")
        metrics = train_wikiqa_matcher(data_dir, out_dir, **settings)
    else:
        metrics = train_matcher(data_dir / "faq.csv" if data_dir else None, out_dir, **settings)
    click.echo(f"model written to {out_dir}; validation: {metrics}")


@train.command()
@click.argument("path", type=existing_dir)
@store_option
@centre_dir_option
@click.option("--key", "key_path", type=existing_file,
              help="The fleet signing key (PEM): write a signed acknowledgement per box on "
                   "the stick.")
@click.option("--published", "published_root", type=existing_dir,
              help="Published models dir: copy each box's newest bundles onto the stick.")
def ingest(path, store_path, centre_dir, key_path, published_root):
    """Verify and load the sync bundle(s) at PATH into the central store (idempotent).

    With --key, leave a signed acknowledgement per box on the stick (every good bundle,
    also those already ingested); with --published, the newest models for each box's
    school. A damaged bundle is refused whole and not acknowledged.
    """
    from export.keys import load_private_key

    from .centre import CentreConfig
    from .fleet import Fleet
    from .quarantine import quarantine_bundle
    from .store import CentralStore
    from .usb import ingest_stick

    centre = CentreConfig.from_dir(centre_dir)
    _log_to_file(Path(centre_dir) / "centre.log")
    store_path = store_path or centre.store_path
    private_key = load_private_key(key_path) if key_path else None

    def keep_refused(bundle, message):  # logged by quarantine(); the error below says where
        quarantine_bundle(centre.quarantine_dir, bundle, reason="usb-refused", message=message,
                          max_body_bytes=1 << 30, max_bytes=centre.max_quarantine_bytes)

    with CentralStore(store_path) as store, Fleet(store_path) as fleet:
        outcome = ingest_stick(store, path, private_key=private_key,
                               published_root=published_root, fleet=fleet,
                               quarantine_to=keep_refused)
        for result in outcome.report.results:
            click.echo(f"{result.source}: {result.count} records, {result.added} new, "
                       f"{result.duplicates} already ingested")
        click.echo(f"central store {store_path}: {store.count()} records")
    for ack in outcome.ack_files:
        click.echo(f"acknowledgement written: {ack}")
    for model in outcome.model_dirs:
        click.echo(f"model copied to the stick: {model}")
    for line in outcome.skipped:
        click.echo(f"warning: {line}", err=True)
    outcome.report.raise_if_refused(centre.quarantine_dir)


def _log_to_file(path: Path) -> None:
    """The centre's CLI logs (refusals, quarantines) to a file; stderr keeps its one line."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("training")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@train.command()
@centre_dir_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
def serve(centre_dir, host, port):
    """Serve the ingest server (push, models, reports) for the boxes, under gunicorn."""
    import os

    from .centre import CentreConfig, gunicorn_argv, gunicorn_env
    from .fleet import Fleet

    CentreConfig.from_dir(centre_dir).prepare()
    Fleet(CentreConfig.from_dir(centre_dir).store_path).close()
    argv = gunicorn_argv(host, port)
    click.echo(f"centre {centre_dir} serving on http://{host}:{port}")
    os.execve(argv[0], argv, gunicorn_env(centre_dir))


@train.group()
def fleet() -> None:
    """The boxes allowed to sync with this centre."""


@fleet.command("add-box")
@centre_dir_option
@click.option("--box-id", required=True)
@click.option("--school-id", required=True)
@click.option("--rotate", is_flag=True, help="Issue a new token to a box already registered.")
def add_box(centre_dir, box_id, school_id, rotate):
    """Register a box and print its token (shown once; only its hash is kept)."""
    from .centre import CentreConfig
    from .fleet import Fleet

    with Fleet(CentreConfig.from_dir(centre_dir).store_path) as registry:
        token = registry.add_box(box_id, school_id, rotate=rotate)
    click.echo(f"box {box_id} (school {school_id}) registered; its token, shown only now:",
               err=True)
    click.echo(token)


@fleet.command("list")
@centre_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
def list_boxes(centre_dir, as_json):
    """The registered boxes: school, last seen, installed models, records ingested."""
    import json

    from .centre import CentreConfig
    from .fleet import Fleet

    with Fleet(CentreConfig.from_dir(centre_dir).store_path) as registry:
        boxes = registry.list_boxes()
    if as_json:
        click.echo(json.dumps([b.to_dict() for b in boxes], indent=2, sort_keys=True))
        return
    if not boxes:
        click.echo("no boxes registered; add one with 'chalkbox train fleet add-box'")
    for b in boxes:
        models = ", ".join(f"{task} {version}" for task, version in sorted(b.models.items()))
        click.echo(f"{b.box_id}  school={b.school_id}  last_seen={b.last_seen or 'never'}  "
                   f"records={b.records}  models={models or '-'}")


@train.command()
@click.argument("bundle", type=existing_dir)
@centre_dir_option
@click.option("--public-key", required=True, type=existing_file,
              help="The fleet public key (PEM) the bundle must verify with.")
@click.option("--school-id", help="Publish for this school only (default: every school).")
def publish(bundle, centre_dir, public_key, school_id):
    """Verify a model bundle and make it the newest for its task (for boxes to fetch)."""
    from .centre import CentreConfig
    from .publish import publish as publish_bundle

    dest = publish_bundle(bundle, CentreConfig.from_dir(centre_dir).published_root, public_key,
                          school_id=school_id)
    click.echo(f"published {dest.name} for {school_id or 'every school'}: {dest}")


@click.command()
@click.option("--workdir", type=new_dir, default="var/demo",
              show_default=True, help="Where the demo keeps its models, box and central store.")
@click.option("--base-model", help="A local Hugging Face checkpoint (default: packaged MiniLM).")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=5.0, show_default=True)
@click.option("--lr", "learning_rate", type=click.FloatRange(1e-7, 1.0), default=1e-4,
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--no-serve", is_flag=True, help="Run the loop once and stop the server (for CI).")
def demo(workdir, base_model, epochs, learning_rate, host, port, no_serve):
    """Train a starter model, export it, provision a local box, serve it: the whole loop."""
    from .demo import DemoConfig, run_demo

    run_demo(DemoConfig(workdir=workdir, base_model=base_model, epochs=epochs,
                        learning_rate=learning_rate, host=host,
                        port=port, serve=not no_serve))


@train.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A trained checkpoint directory (config.json + chalkbox.json).")
@dataset_options
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
def evaluate(model_dir, data_path, fmt, as_json, limit, batch_size):
    """Measure a PyTorch checkpoint on a dataset (same metrics as 'chalkbox export evaluate')."""
    import json

    from .evaluate import evaluate_checkpoint, render

    result = evaluate_checkpoint(model_dir, data_path, fmt, limit=limit, batch_size=batch_size)
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else render(result))


from .distill_cli import distill as _distill  # noqa: E402
train.add_command(_distill)

from .round_cli import round_command as _round  # noqa: E402
train.add_command(_round)
