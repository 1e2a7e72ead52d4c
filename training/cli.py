"""``chalkbox train ...`` (the centre) and ``chalkbox demo`` (the whole loop on one machine)."""
from __future__ import annotations

from pathlib import Path

import click

from appliance.cli_types import existing_dir, new_dir

store_option = click.option(
    "--store", "store_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar="CHALKBOX_CENTRAL_STORE", default="var/central/chalkbox.db", show_default=True,
    help="The central SQLite store.")


@click.group()
def train() -> None:
    """At the centre: ingest what boxes send and train the next models."""


@train.command()
@click.option("--data", "data_dir", type=existing_dir,
              help="Content dir with exercises.csv + answers.csv (default: the demo content).")
@click.option("--out", "out_dir", required=True, type=new_dir)
@click.option("--base-model", help="A local Hugging Face checkpoint (default: packaged MiniLM).")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=3.0, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=5e-5, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(8, 4096), default=128, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--eval-fraction", type=click.FloatRange(0.0, 0.9), default=0.15, show_default=True,
              help="Share of exercises held out (whole exercises, never seen in training).")
def grade(data_dir, out_dir, base_model, epochs, learning_rate, batch_size, max_length, seed,
          eval_fraction):
    """Fine-tune a grading model on teacher-labelled answers."""
    from .recipes import train_grader

    metrics = train_grader(data_dir, out_dir, base_model=base_model, epochs=epochs,
                           learning_rate=learning_rate, batch_size=batch_size,
                           max_length=max_length, seed=seed, eval_fraction=eval_fraction)
    click.echo(f"model written to {out_dir}; validation: {metrics}")


@train.command()
@click.argument("path", type=existing_dir)
@store_option
def ingest(path, store_path):
    """Verify and load the sync bundle(s) at PATH into the central store (idempotent)."""
    from .ingest import ingest_path
    from .store import CentralStore

    with CentralStore(store_path) as store:
        for result in ingest_path(store, path):
            click.echo(f"{result.source}: {result.count} records, {result.added} new, "
                       f"{result.duplicates} already ingested")
        click.echo(f"central store {store_path}: {store.count()} records")


@click.command()
@click.option("--workdir", type=new_dir, default="var/demo",
              show_default=True, help="Where the demo keeps its models, box and central store.")
@click.option("--base-model", help="A local Hugging Face checkpoint (default: packaged MiniLM).")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=5.0, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--no-serve", is_flag=True, help="Run the loop once and stop the server (for CI).")
def demo(workdir, base_model, epochs, host, port, no_serve):
    """Train a starter model, export it, provision a local box, serve it: the whole loop."""
    from .demo import DemoConfig, run_demo

    run_demo(DemoConfig(workdir=workdir, base_model=base_model, epochs=epochs, host=host,
                        port=port, serve=not no_serve))
