"""``chalkbox box doctor|diagnostics|backup|restore``: the technician's tools.

The diagnostics bundle is assembled here too: it is the doctor's answers plus
settings, counts and file names, for someone who cannot see the box. It never
holds a record's content, and every string in it is scrubbed of the box's secrets
and its students' nicknames and pseudonyms in case one slipped into a message.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import click

from .box_cli import data_dir_option
from .cli_types import existing_dir
from .config import BoxConfig, load_config
from .errors import ApplianceError, StoreError

VERSIONED = ("chalkbox", "onnxruntime", "onnxruntime-gpu", "flask", "tinydb", "huey", "numpy",
             "tokenizers", "cryptography", "gunicorn")


def register(box: click.Group) -> None:
    """Add the technician's commands to the ``box`` group."""
    for command in (doctor, diagnostics, backup, restore):
        box.add_command(command)


@click.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", help="The box's address to probe (default: host and port of box.toml).")
@click.pass_context
def doctor(ctx, data_dir, as_json, url):
    """Check the box: disk, permissions, store, model, worker, queue, sync, clock, port.

    Exits 1 when any check fails (warnings do not fail)."""
    from .doctor import FAIL, Check, format_plain, report, run_checks

    try:
        checks = run_checks(load_config(data_dir), url=url)
    except ApplianceError as exc:  # not a box at all: still answer in the asked format
        checks = [Check("config", FAIL, exc.message, exc.hint)]
    result = report(checks)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for line in format_plain(checks):
            click.echo(line)
        failed = sum(c.status == FAIL for c in checks)
        warned = sum(c.status == "warn" for c in checks)
        click.echo(f"overall: {result['status']} ({failed} failed, {warned} warning(s))")
    if result["status"] == FAIL:
        ctx.exit(1)


@click.command()
@data_dir_option
@click.option("--to", "dest", required=True, type=existing_dir,
              help="Where to write the bundle (e.g. a mounted USB stick).")
@click.option("--url", help="The box's address to probe (default: host and port of box.toml).")
def diagnostics(data_dir, dest, url):
    """Write a redacted diagnostics bundle for support: no student text, no secrets."""
    path, status = write_diagnostics(load_config(data_dir), dest, url=url)
    click.echo(f"diagnostics written to {path} (doctor: {status})")


@click.command()
@data_dir_option
@click.option("--to", "dest", required=True, type=existing_dir,
              help="Where to write the backup (e.g. a mounted USB stick).")
def backup(data_dir, dest):
    """Copy the data dir to --to and verify the copy file by file.

    The backup holds the box's secrets: keep the stick safe."""
    from .backup import make_backup

    result = make_backup(load_config(data_dir), dest)
    click.echo(f"backup verified: {result.path} ({result.files} files, "
               f"{result.bytes / 2**20:.1f} MB); it holds the box's secrets, keep it safe")


@click.command()
@click.option("--from", "source", required=True, type=existing_dir,
              help="A chalkbox-backup-... directory written by 'chalkbox box backup'.")
@data_dir_option
@click.option("--force", is_flag=True, help="Replace the box already in --data-dir.")
def restore(source, data_dir, force):
    """Verify a backup, then make it the data dir (the old one is kept beside it).

    Stop the web service and the worker first."""
    from .backup import restore_backup

    aside = restore_backup(source, data_dir, force=force)
    click.echo(f"restored {source} into {data_dir}"
               + (f"; the previous data dir is kept at {aside}" if aside else ""))
    click.echo("next: start the services and run 'chalkbox box doctor'")


# --- the diagnostics bundle ----------------------------------------------------------
def write_diagnostics(config: BoxConfig, dest: Path, *, url: str | None = None) -> tuple[Path, str]:
    """``chalkbox-diagnostics-<box>-<stamp>/`` under ``dest``, staged then renamed;
    returns it and the doctor's overall status."""
    from .backup import stamped_name
    from .doctor import report, run_checks
    from .fsutil import publish_dir

    doctor_report = report(run_checks(config, url=url))
    sections = {"doctor.json": lambda: {"box_id": config.box_id, **doctor_report},
                "config.json": lambda: _config_summary(config),
                "models.json": lambda: {"installed": _installed(config)},
                "sync.json": lambda: _sync_summary(config),
                "outbox.json": lambda: _outbox_summary(config),
                "versions.json": _versions}
    redact = _redactor(config)
    dest = Path(dest)
    name = stamped_name(dest, f"chalkbox-diagnostics-{config.box_id}")
    staging = dest / f".staging-{name}"
    staging.mkdir()
    try:
        for file_name, section in sections.items():
            try:
                data = section()
            except Exception as exc:  # a damaged part must not cost the whole bundle
                data = {"error": f"{type(exc).__name__}: {exc}"}
            text = json.dumps(redact(data), indent=2, ensure_ascii=False, default=str)
            (staging / file_name).write_text(text + "\n", encoding="utf-8")
        publish_dir(staging, dest / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest / name, doctor_report["status"]


def _redactor(config: BoxConfig) -> Callable[[Any], Any]:
    from .doctor import read_json
    from .privacy import SECRET_FILE, names_pattern

    needles = []
    for path, decode in ((config.token_path, lambda b: b.decode("utf-8", "replace").strip()),
                         (config.secrets_dir / SECRET_FILE, bytes.hex)):
        try:
            needles.append(decode(path.read_bytes()))
        except OSError:
            pass
    data = read_json(config.roster_path)
    rows = data.get("students") if isinstance(data, dict) else None
    rows = [r for r in (rows.values() if isinstance(rows, dict) else []) if isinstance(r, dict)]
    needles += [str(r["student"]) for r in rows if r.get("student")]
    needles = sorted({n for n in needles if len(n) >= 6}, key=len, reverse=True)
    names = names_pattern(str(r["nickname"]) for r in rows if r.get("nickname"))

    def redact(value: Any) -> Any:
        if isinstance(value, str):
            for needle in needles:
                value = value.replace(needle, "[redacted]")
            return names.sub("[name]", value) if names else value
        if isinstance(value, dict):
            return {key: redact(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [redact(item) for item in value]
        return value
    return redact


def _config_summary(config: BoxConfig) -> dict[str, Any]:
    from urllib.parse import urlsplit

    settings = config.settings()
    if settings["central_url"]:  # no user:password@ or ?token= in a bundle sent away
        url = urlsplit(settings["central_url"])
        port = f":{url.port}" if url.port else ""
        settings["central_url"] = f"{url.scheme}://{url.hostname}{port}{url.path}"
    return {"data_dir": str(config.data_dir), "settings": settings,
            "token_present": config.token_path.is_file()}


def _installed(config: BoxConfig) -> list[dict]:
    from .models import installed

    return installed(config.models_dir)


def _sync_summary(config: BoxConfig) -> dict[str, Any]:
    from .store import Outbox
    from .sync.session import SESSION_FILE, load_state

    has_session = (config.sync_dir / SESSION_FILE).exists()
    summary: dict[str, Any] = {"central_url_set": bool(config.central_url),
                               "session": dataclasses.asdict(load_state(config))
                               if has_session else None}
    try:
        outbox = Outbox(config.outbox_dir, config.segment_records)
        count, oldest = outbox.unsynced()
        summary.update(unsynced=count, oldest_unsynced_at=oldest.created_at if oldest else None,
                       acked_through=outbox.acked_through())
    except ApplianceError as exc:
        summary["unsynced_error"] = exc.message
    return summary


def _outbox_summary(config: BoxConfig) -> dict[str, Any]:
    """Segment names, sizes and record counts by kind: never a record's content."""
    from .doctor import read_json
    from .records import KINDS
    from .store import Outbox
    from .store.outbox import TABLE

    outbox = Outbox(config.outbox_dir, config.segment_records)
    segments, total, names = [], 0, set()
    for path in outbox.segments():
        names.add(path.name)
        row: dict[str, Any] = {"name": path.name, "bytes": path.stat().st_size}
        data = read_json(path)
        docs = data.get(TABLE) if isinstance(data, dict) else None
        if isinstance(docs, dict):
            kinds = collections.Counter(
                d["kind"] if isinstance(d, dict) and d.get("kind") in KINDS else "other"
                for d in docs.values())
            row.update(records=len(docs), kinds=dict(kinds))
            total += len(docs)
        else:
            row["error"] = "not readable"
        segments.append(row)
    others = [{"name": p.name, "bytes": p.stat().st_size}
              for p in sorted(config.outbox_dir.iterdir()) if p.name not in names]
    try:
        acked: Any = outbox.acked_through()
    except StoreError:
        acked = "damaged"
    return {"records": total, "acked_through": acked, "segments": segments,
            "other_files": others}


def _versions() -> dict[str, Any]:
    import platform
    from importlib import metadata

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        import onnxruntime

        out["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return out
