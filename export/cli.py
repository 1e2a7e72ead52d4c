"""``chalkbox export ...``: keys, bundle builds, signing and verification."""
from __future__ import annotations

import json
from pathlib import Path

import click

from appliance.cli_types import existing_dir, existing_file, new_dir

from .onnx import TARGETS


@click.group()
def export() -> None:
    """At the centre: turn a trained model into a signed bundle for the boxes."""


@export.command()
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path))
def keygen(private_key):
    """Create an ed25519 signing key PRIVATE_KEY and its public key beside it."""
    from .keys import keygen as make

    private, public = make(private_key)
    click.echo(f"private key: {private} (keep it at the centre)\npublic key:  {public} "
               "(give it to every box)")


@export.command()
@click.option("--model", "model_dir", required=True, type=existing_dir,
              help="A trained checkpoint (from 'chalkbox train').")
@click.option("--out", "out_dir", required=True, type=new_dir,
              help="Where to write the bundle directory.")
@click.option("--key", "signing_key", required=True, type=existing_file, help="The signing key.")
@click.option("--check-data", type=existing_dir,
              help="Content dir (exercises.csv + answers.csv) for the export checks; "
                   "default: the demo content.")
@click.option("--target", type=click.Choice(TARGETS), help="Quantize for this CPU (default: this one).")
@click.option("--no-quantize", is_flag=True, help="Ship fp32 (bigger, slower).")
@click.option("--version", help="Bundle version (default: a UTC timestamp).")
def build(model_dir, out_dir, signing_key, check_data, target, no_quantize, version):
    """Export MODEL to ONNX, quantize to int8, check, sign: a bundle in OUT."""
    from appliance.content import demo_content_dir, read_labelled_content
    from appliance.inference.pairs import labelled_grade_pairs

    from .build import BuildRequest, build_bundle
    from .checkpoint import read_checkpoint_info

    info = read_checkpoint_info(model_dir)
    exercises, answers = read_labelled_content(check_data or demo_content_dir())
    pairs, labels = labelled_grade_pairs(exercises, answers, info.input_format)
    manifest = build_bundle(BuildRequest(model_dir=model_dir, out_dir=out_dir,
                                         signing_key=signing_key, check_pairs=pairs,
                                         check_labels=labels, target=target,
                                         quantize=not no_quantize, version=version))
    click.echo(f"bundle {manifest.name} written to {out_dir}")
    click.echo(json.dumps(manifest.metrics.get("export", {}), indent=2))


@export.command()
@click.argument("bundle", type=existing_dir)
@click.option("--key", "signing_key", required=True, type=existing_file)
def sign(bundle, signing_key):
    """(Re)sign BUNDLE's manifest with KEY."""
    from .keys import sign_bundle

    click.echo(f"signed: {sign_bundle(bundle, signing_key)}")


@export.command()
@click.argument("bundle", type=existing_dir)
@click.option("--public-key", required=True, type=existing_file)
def verify(bundle, public_key):
    """Check BUNDLE's signature and every file's checksum."""
    from appliance.bundle import verify_bundle

    manifest = verify_bundle(bundle, public_key)
    click.echo(f"ok: {manifest.name} ({manifest.task}, {manifest.quantization}) verifies")
