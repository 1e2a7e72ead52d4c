"""``chalkbox box ...``: provisioning, serving, models, content and sync on the box."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .cli_types import existing_dir, new_dir
from .config import load_config

data_dir_option = click.option(
    "--data-dir", type=new_dir, envvar="CHALKBOX_DATA_DIR",
    default="/var/lib/chalkbox", show_default=True, help="The box's data directory.")


@click.group()
def box() -> None:
    """On the box: provision it, serve it, manage its models, content and sync."""


@box.command("opt-out")
@data_dir_option
@click.option("--class-id", required=True)
@click.option("--nickname", required=True)
@click.option("--undo", is_flag=True, help="Opt the student back in.")
def opt_out(data_dir, class_id, nickname, undo):
    """Keep a student's work on the box only: never exported to the centre."""
    from .errors import NotFound
    from .privacy import load_secret, pseudonym
    from .store.roster import Roster

    config = load_config(data_dir)
    student = pseudonym(load_secret(config.secrets_dir), class_id, nickname)
    if not Roster(config.roster_path).set_opt_out(student, not undo):
        raise NotFound(f"no student {nickname!r} in class {class_id!r} has used this box",
                       hint="check the class code and nickname as the student typed them")
    click.echo(f"{nickname} ({class_id}) is now opted {'in' if undo else 'out'}")


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

    from .identity import ensure_identity

    config, renewed = ensure_identity(load_config(data_dir))
    if renewed:
        click.echo(f"new box identity {config.box_id} (cloned image or deprovisioned)", err=True)
    config = load_config(data_dir, {"host": host, "port": port, "workers": workers,
                                    "threads": threads})
    # Refuse here, in one line, rather than start a server that can grade nothing.
    verify_bundle(current_bundle_dir(config.models_dir), config.public_key_path)
    argv = gunicorn_argv(config)
    os.execve(argv[0], argv, gunicorn_env(config))


@box.command()
@data_dir_option
@click.option("--workers", type=click.IntRange(1, 8), default=1, show_default=True)
def worker(data_dir, workers):
    """Run the background worker (sync, USB, model installs, compaction) in the foreground."""
    import logging

    from .identity import ensure_identity

    ensure_identity(load_config(data_dir))  # refuse an unprovisioned dir; renew a clone's id
    os.environ["CHALKBOX_DATA_DIR"] = str(Path(data_dir).absolute())
    from huey.consumer import Consumer

    from .tasks import huey

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Consumer(huey, workers=workers, worker_type="thread", periodic=True, check_worker_health=True,
             flush_locks=True).run()


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
    """Carry the box's records to the centre, by network or USB stick."""


def _sync_parts(data_dir):
    from .store import open_outbox

    config = load_config(data_dir)
    return config, open_outbox(config)


@sync.command("export")
@data_dir_option
@click.option("--to", "dest", required=True, type=existing_dir,
              help="Where to write the sync bundle (e.g. the mounted USB stick).")
def sync_export(data_dir, dest):
    """Write every record the centre has not acknowledged as a sync bundle under --to."""
    from .sync.usb import export_to_stick

    config, outbox = _sync_parts(data_dir)
    result = export_to_stick(outbox, config, dest)
    if result.path is None:
        click.echo("nothing to export: the centre has every record")
    else:
        click.echo(f"exported {result.count} records to {result.path}")


@sync.command("usb")
@data_dir_option
@click.option("--stick", type=existing_dir, help="The stick's directory (default: the one "
                                                 "mounted under usb_mount_root).")
@click.option("--install-models", is_flag=True, help="Install model bundles found on the stick.")
@click.option("--via-worker", is_flag=True,
              help="Hand the job to the running worker and wait for it (as the teacher page does).")
def sync_usb(data_dir, stick, install_models, via_worker):
    """Read the centre's acknowledgements and models from a stick, then export to it."""
    from .errors import ConfigError
    from .models import install_bundle
    from .sync.usb import export_to_stick, import_from_stick, list_sticks

    config, outbox = _sync_parts(data_dir)
    if stick is None:
        sticks = list_sticks(config.usb_mount_root)
        if len(sticks) != 1:
            raise ConfigError(f"found {len(sticks)} sticks under {config.usb_mount_root}",
                              hint="plug in one stick, or name it with --stick")
        stick = sticks[0]
    if via_worker:
        click.echo(json.dumps(_via_worker(config, "usb_sync", str(Path(stick).absolute()),
                                          install_models)))
        return
    imported = import_from_stick(outbox, config, stick)
    if imported.acks_refused:
        click.echo(f"acknowledgements refused: {imported.acks_refused}", err=True)
    click.echo(f"acknowledgements applied: {imported.acks_applied}")
    result = export_to_stick(outbox, config, stick)  # records first, whatever follows
    click.echo(f"exported {result.count} records" + (f" to {result.path}" if result.path else ""))
    for bundle in imported.models:
        if install_models:
            manifest = install_bundle(config.models_dir, bundle, config.public_key_path)
            click.echo(f"installed model {manifest.name}")
        else:
            click.echo(f"model offered: {bundle} (install with --install-models)")


def _via_worker(config, task_name: str, *args, timeout: float = 300):
    """Enqueue a task for the worker of this data dir and wait for its result."""
    from huey.exceptions import HueyException, TaskException

    from .errors import ConfigError

    os.environ["CHALKBOX_DATA_DIR"] = str(config.data_dir.absolute())
    from . import tasks

    result = getattr(tasks, task_name)(*args)
    try:
        return result.get(blocking=True, timeout=timeout)
    except HueyException:
        raise ConfigError(f"the worker did not finish '{task_name}' within {timeout:.0f}s",
                          hint="is 'chalkbox box worker' running? (systemctl status chalkbox-worker)")
    except TaskException as exc:
        raise ConfigError(f"the worker's '{task_name}' failed: {exc.metadata.get('error')}")


@sync.command("now")
@data_dir_option
def sync_now(data_dir):
    """Sync with the centre over the network now (push records, pull the newest model)."""
    from .sync.session import run_sync

    from .doctor import health_summary

    config, outbox = _sync_parts(data_dir)
    state = run_sync(config, outbox, health=lambda: health_summary(config), force=True)
    click.echo(f"sync {state.stage}: {state.counters}")


@sync.command("status")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync_status(data_dir, as_json):
    """What awaits the centre, and how the last network sync went."""
    import dataclasses

    from .sync.session import load_state

    config, outbox = _sync_parts(data_dir)
    count, oldest = outbox.unsynced()
    state = load_state(config)
    status = {"unsynced": count, "oldest_unsynced": oldest.created_at if oldest else None,
              "acked_through": outbox.acked_through(), "session": dataclasses.asdict(state)}
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        click.echo(f"unsynced records: {count} (oldest {status['oldest_unsynced']}); "
                   f"last sync: {state.stage}, error: {state.last_error}")
