"""``chalkbox box ...``: provisioning, serving, models, content and sync on the box."""
from __future__ import annotations

import json
import os

import click

from .cli_types import existing_dir, existing_file, new_dir

from .config import load_config

data_dir_option = click.option(
    "--data-dir", type=new_dir, envvar="CHALKBOX_DATA_DIR",
    default="/var/lib/chalkbox", show_default=True, help="The box's data directory.")


@click.group()
def box() -> None:
    """On the box: provision it, serve it, manage its models, content and sync."""


@box.command()
@data_dir_option
@click.option("--school-id", required=True, help="The school this box serves.")
@click.option("--public-key", required=True, type=existing_file,
              help="The fleet's ed25519 public key (PEM) that model bundles must verify against.")
@click.option("--box-id", help="This box's id (generated on first provisioning if not given).")
@click.option("--bundle", type=existing_dir, help="A signed model bundle to install.")
@click.option("--content", "content_dir", type=existing_dir,
              help="A directory with exercises.csv (and faq.csv) to load.")
@click.option("--demo-content", is_flag=True, help="Load the demo exercises and FAQ shipped with Chalkbox.")
@click.option("--host", help="Address to serve on.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to serve on.")
def provision(data_dir, school_id, public_key, box_id, bundle, content_dir, demo_content, host, port):
    """Make DATA_DIR a working box. Safe to run again: identity and data are kept."""
    from .content import demo_content_dir
    from .provision import ProvisionRequest, provision as run

    if demo_content:
        content_dir = demo_content_dir()
    config = run(ProvisionRequest(data_dir=data_dir, school_id=school_id, public_key=public_key,
                                  box_id=box_id, bundle=bundle, content_dir=content_dir,
                                  host=host, port=port))
    click.echo(f"box {config.box_id} of school {config.school_id} provisioned in {config.data_dir}")


@box.command()
@data_dir_option
@click.option("--host", help="Address to serve on (overrides box.toml).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (overrides box.toml).")
@click.option("--workers", type=click.IntRange(1, 16), help="gunicorn worker processes.")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per worker.")
def serve(data_dir, host, port, workers, threads):
    """Serve the box with gunicorn (in the foreground)."""
    from .bundle import verify_bundle
    from .models import current_bundle_dir
    from .serve import gunicorn_argv, gunicorn_env

    config = load_config(data_dir, {"host": host, "port": port, "workers": workers,
                                    "threads": threads})
    # Refuse here, in one line, rather than start a server that can grade nothing.
    verify_bundle(current_bundle_dir(config.models_dir), config.public_key_path)
    argv = gunicorn_argv(config)
    os.execve(argv[0], argv, gunicorn_env(config))


@box.group()
def model() -> None:
    """Install, list and roll back model bundles."""


@model.command("install")
@data_dir_option
@click.argument("bundle", type=existing_dir)
def model_install(data_dir, bundle):
    """Verify BUNDLE's signature and make it the current model (the old one is kept)."""
    from .models import install_bundle

    config = load_config(data_dir)
    manifest = install_bundle(config.models_dir, bundle, config.public_key_path)
    click.echo(f"installed {manifest.task} model {manifest.name}")


@model.command("list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def model_list(data_dir, as_json):
    """List installed models and which is current."""
    from .models import installed

    rows = installed(load_config(data_dir).models_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['task']:6} {row['model_id']}-{row['version']:24} {row['role']}")


@model.command("rollback")
@data_dir_option
@click.option("--task", default="grade", show_default=True)
def model_rollback(data_dir, task):
    """Go back to the previous model."""
    from .models import rollback

    config = load_config(data_dir)
    manifest = rollback(config.models_dir, config.public_key_path, task)
    click.echo(f"rolled back: {task} model is now {manifest.name}")


@box.group()
def content() -> None:
    """Exercises and FAQ."""


@content.command("import")
@data_dir_option
@click.argument("directory", type=existing_dir)
def content_import(data_dir, directory):
    """Replace the exercises (and FAQ) with DIRECTORY's exercises.csv (and faq.csv)."""
    from .provision import import_content

    exercises, faq = import_content(load_config(data_dir), directory)
    click.echo(f"imported {exercises} exercises and {faq} FAQ entries")


@box.group()
def sync() -> None:
    """Carry the box's records to the centre."""


@sync.command("export")
@data_dir_option
@click.option("--to", "dest", required=True, type=existing_dir,
              help="Where to write the sync bundle (e.g. the mounted USB stick).")
def sync_export(data_dir, dest):
    """Write the box's records as a checksummed sync bundle under --to."""
    from .sync.export import export_to

    path, count = export_to(load_config(data_dir), dest)
    if path is None:
        click.echo("nothing to export: no interactions recorded yet")
    else:
        click.echo(f"exported {count} records to {path}")
