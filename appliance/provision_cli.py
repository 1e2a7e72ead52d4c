"""``chalkbox box provision`` and ``deprovision``: the field technician's first hour."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_types import existing_dir, existing_file, new_dir


def register(box: click.Group, data_dir_option) -> None:
    box.add_command(data_dir_option(provision))
    box.add_command(data_dir_option(deprovision))


def _hex_secret(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        raise click.BadParameter("must be 64 hex digits", param_hint="--school-secret")


def _bundle_from_usb(mount_root: str, school_id: str, public_key: Path) -> Path:
    """The newest bundle for this school on a mounted stick that verifies with the fleet key."""
    from .bundle import verify_bundle
    from .errors import ApplianceError, BundleError
    from .sync.protocol import MODELS_DIR_ON_STICK
    from .sync.usb import list_sticks

    found = []
    for stick in list_sticks(Path(mount_root)):
        for bundle in (stick / MODELS_DIR_ON_STICK / school_id / "grade").glob("*"):
            try:
                found.append((verify_bundle(bundle, public_key).created_at or "", bundle))
            except ApplianceError:
                continue
    if not found:
        raise BundleError(f"no model bundle for school {school_id} on a stick under {mount_root}",
                          hint="copy one with 'chalkbox train ingest --published', or give a path")
    return max(found)[1]


@click.command()
@click.option("--from-file", "from_file", type=existing_file,
              help="An unattended provisioning file (TOML; see docs/technician.md). Deleted "
                   "once applied: it holds secrets.")
@click.option("--school-id", help="The school this box serves.")
@click.option("--public-key", type=existing_file,
              help="The fleet's ed25519 public key (PEM) that model bundles must verify against.")
@click.option("--box-id", help="This box's id (generated on first provisioning if not given).")
@click.option("--bundle", help="A signed model bundle to install: a directory, or 'usb'.")
@click.option("--content", "content_dir", type=existing_dir,
              help="A directory with exercises.csv (and faq.csv) to load.")
@click.option("--demo-content", is_flag=True, help="Load the demo exercises and FAQ.")
@click.option("--host", help="Address to serve on (0.0.0.0 for the school Wi-Fi).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--central-url", help="The centre's address for network sync (http(s)://...).")
@click.option("--token", help="This box's token from 'chalkbox train fleet add-box'.")
@click.option("--usb-mount-root", help="Where USB sticks are mounted (default /media).")
@click.option("--school-secret", help="64 hex digits shared by the school's boxes, so a student "
                                      "has one pseudonym school-wide (default: a new one).")
@click.option("--teacher", "teacher_username", help="Create (or reset) this teacher account; "
                                                    "the password is asked for.")
@click.option("--root", type=new_dir, help="Install the systemd units under this root "
                                           "('/' on a real box).")
def provision(data_dir, from_file, school_id, public_key, box_id, bundle, content_dir,
              demo_content, host, port, central_url, token, usb_mount_root, school_secret,
              teacher_username, root):
    """Make DATA_DIR a working box. Safe to run again: identity and data are kept.

    Interactive on a terminal (it asks for what is missing); unattended with --from-file.
    """
    from . import provision_file
    from .content import demo_content_dir
    from .errors import ConfigError
    from .provision import ProvisionRequest, provision as run

    teacher_password = None
    if from_file is not None:
        spec = provision_file.read(from_file)
        school_id, public_key, box_id = spec.school_id, spec.public_key, spec.box_id
        bundle, central_url, token = spec.bundle, spec.central_url, spec.token
        host, port, usb_mount_root = spec.host, spec.port, spec.usb_mount_root
        teacher_username, teacher_password = spec.teacher_username, spec.teacher_password
        secret = spec.school_secret
        if spec.content == "demo":
            demo_content = True
        elif spec.content:
            content_dir = Path(spec.content)
    else:
        secret = _hex_secret(school_secret)
        interactive = sys.stdin.isatty()
        if school_id is None and interactive:
            school_id = click.prompt("School id")
        if public_key is None and interactive:
            public_key = click.prompt("Fleet public key (PEM file)", type=existing_file)
        if teacher_username and interactive:
            teacher_password = click.prompt(f"Password for teacher {teacher_username}",
                                            hide_input=True, confirmation_prompt=True)
    for name, value in (("--school-id", school_id), ("--public-key", public_key)):
        if not value:
            raise ConfigError(f"{name} is required", hint="give it, or use --from-file")
    if teacher_username and not teacher_password:
        raise ConfigError(f"no password for teacher {teacher_username}",
                          hint="run interactively, or put it in the provisioning file")
    if bundle == "usb":
        bundle = _bundle_from_usb(usb_mount_root or "/media", school_id, Path(public_key))
    if demo_content:
        content_dir = demo_content_dir()
    config = run(ProvisionRequest(
        data_dir=data_dir, school_id=school_id, public_key=Path(public_key), box_id=box_id,
        bundle=Path(bundle) if bundle else None, content_dir=content_dir, host=host, port=port,
        central_url=central_url, token=token, usb_mount_root=usb_mount_root, school_secret=secret,
        teacher_username=teacher_username, teacher_password=teacher_password, root=root))
    if from_file is not None:
        Path(from_file).unlink()  # applied once: it holds the token and a password
    click.echo(f"box {config.box_id} of school {config.school_id} provisioned in {config.data_dir}"
               + (f"; units installed under {root}" if root else ""))
    if root is not None and Path(root).resolve() == Path("/"):
        from .units import activate_on_this_machine

        for command in activate_on_this_machine(config):
            click.echo(f"next: {command}")


@click.command()
@click.option("--force", is_flag=True, help="Discard records the centre does not have yet.")
def deprovision(data_dir, force):
    """Prepare DATA_DIR for imaging: forget this box's identity and its own records.

    Models, content, configuration, the fleet key and the school secret stay. A box
    started from the image makes itself a new identity.
    """
    from .config import load_config
    from .identity import deprovision as run

    removed = run(load_config(data_dir), force=force)
    click.echo(f"deprovisioned {data_dir}: removed {', '.join(removed) or 'nothing'}; "
               "the next start makes a new box id")
