"""``chalkbox demo``: the whole loop on one machine, thin but real.

train (packaged MiniLM, demo data) -> export (ONNX, int8, checks, signed bundle)
-> provision a local box -> serve it with gunicorn -> grade one answer through
the API -> export a sync bundle -> ingest it at the "centre", twice (the second
adds nothing). Then it keeps serving until Ctrl-C, unless --no-serve.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
from pathlib import Path

import click

from appliance.config import load_config
from appliance.content import demo_content_dir, read_labelled_content
from appliance.inference.pairs import labelled_grade_pairs
from appliance.provision import ProvisionRequest, provision
from appliance.serve import gunicorn_argv, gunicorn_env, http_json, wait_ready
from appliance.store import open_outbox
from appliance.sync.usb import export_to_stick
from export.build import BuildRequest, build_bundle
from appliance.models import install_bundle
from export.keys import ensure_keypair

from .errors import TrainingError
from .ingest import ingest_path
from .recipes import train_grader
from .store import CentralStore


@dataclasses.dataclass
class DemoConfig:
    workdir: Path = Path("var/demo")
    base_model: str | None = None
    epochs: float = 5.0
    learning_rate: float = 1e-4
    host: str = "127.0.0.1"
    port: int = 8080
    serve: bool = True
    school_id: str = "demo-school"
    class_id: str = "demo-class"


def step(message: str) -> None:
    click.secho(f"==> {message}", fg="cyan", bold=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(config: DemoConfig) -> None:
    work = Path(config.workdir).absolute()
    if not _port_free(config.host, config.port):
        raise TrainingError(f"port {config.port} on {config.host} is in use",
                            hint="stop what uses it, or pass --port")
    exercises, answers = read_labelled_content(demo_content_dir())

    step(f"1/6 fine-tuning a grading model on the demo data ({len(answers)} answers)")
    model_dir = work / "models" / "grade-teacher"
    metrics = train_grader(None, model_dir, base_model=config.base_model, epochs=config.epochs,
                           learning_rate=config.learning_rate, model_id="grade-demo")
    click.echo(f"    validation on held-out exercises: {metrics}")

    step("2/6 exporting to ONNX, quantizing to int8, checking and signing")
    private_key, public_key = ensure_keypair(work / "keys" / "fleet.pem")
    # All demo answers: the int8-vs-fp32 agreement needs more pairs than the held-out few.
    pairs, labels = labelled_grade_pairs(exercises, answers, "reference|answer")
    bundle_dir = work / "bundles" / "grade-demo"
    manifest = build_bundle(BuildRequest(model_dir=model_dir, out_dir=bundle_dir,
                                         signing_key=private_key, check_pairs=pairs,
                                         check_labels=labels))
    click.echo(f"    bundle {manifest.name}: {json.dumps(manifest.metrics['export'])}")
    ask_bundles = _build_ask_models(config, work, private_key)

    step("3/6 provisioning a local box")
    box = provision(ProvisionRequest(data_dir=work / "box", school_id=config.school_id,
                                     public_key=public_key, bundle=bundle_dir,
                                     content_dir=demo_content_dir(), host=config.host,
                                     port=config.port))
    for bundle in ask_bundles:
        install_bundle(box.models_dir, bundle, box.public_key_path)
    click.echo(f"    box {box.box_id} in {box.data_dir}")

    step(f"4/6 serving with gunicorn on http://{config.host}:{config.port}/")
    server = subprocess.Popen(gunicorn_argv(box), env=gunicorn_env(box))
    base_url = f"http://{config.host}:{config.port}"
    try:
        wait_ready(base_url, server)
        step("5/6 a student answers an exercise")
        exercise = exercises[0]
        status, result = http_json("POST", base_url + "/api/v1/answers", {
            "exercise_id": exercise.id, "answer": exercise.reference_answers[0],
            "class_id": config.class_id, "nickname": "demo-student"})
        if status != 201:
            raise TrainingError(f"the box answered {status}: {result}")
        click.echo(f"    Q: {exercise.question}\n    A: {exercise.reference_answers[0]}\n"
                   f"    -> {result['grade']['label']} ({result['grade']['confidence']:.0%}), "
                   f"record {result['record_id']}")
        question = "why is the sky blue during the day?"
        status, asked = http_json("POST", base_url + "/api/v1/ask", {
            "question": question, "class_id": config.class_id, "nickname": "demo-student"})
        if status != 201:
            raise TrainingError(f"the box answered {status}: {asked}")
        reply = asked.get("answer") or "(not sure: forwarded to the teacher)"
        click.echo(f"    asks: {question}\n    -> {reply} ({asked['confidence'] or 0:.0%})")

        step("6/6 carrying the records to the centre (as on a USB stick)")
        stick = work / "usb-stick"
        stick.mkdir(parents=True, exist_ok=True)
        box_config = load_config(box.data_dir)
        exported = export_to_stick(open_outbox(box_config), box_config, stick)
        path, count = exported.path, exported.count
        click.echo(f"    box -> stick: {count} records in {path}")
        with CentralStore(work / "central" / "chalkbox.db") as store:
            first = ingest_path(store, path)[0]
            again = ingest_path(store, path)[0]
            click.echo(f"    stick -> centre: {first.added} new; ingesting again adds "
                       f"{again.added}; central store holds {store.count()} records")
        _print_guide(config, work, box.data_dir)
        if config.serve:
            click.echo("Serving; press Ctrl-C to stop.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def _build_ask_models(config: DemoConfig, work: Path, private_key: Path) -> list[Path]:
    """The two models behind "ask": a matcher fine-tuned on the demo FAQ, and the base
    model as the sentence encoder that retrieves candidates."""
    from appliance.content import read_faq
    from export.embed import build_embed_bundle
    from training.finetune import default_base_model
    from training.recipes import faq_match_pairs, train_matcher

    faq = read_faq(demo_content_dir() / "faq.csv")
    click.echo(f"    ask: fine-tuning the answer matcher on the demo FAQ ({len(faq)} entries)")
    match_dir = work / "models" / "match-teacher"
    # Every FAQ entry: the box answers only questions its FAQ covers, so none is held out.
    train_matcher(None, match_dir, base_model=config.base_model, epochs=config.epochs,
                  learning_rate=config.learning_rate, model_id="match-demo", max_length=160,
                  eval_fraction=0.0)
    pairs, labels = faq_match_pairs(faq)
    match_bundle = work / "bundles" / "match-demo"
    build_bundle(BuildRequest(model_dir=match_dir, out_dir=match_bundle, signing_key=private_key,
                              check_pairs=pairs, check_labels=labels))
    embed_bundle = work / "bundles" / "embed-demo"
    build_embed_bundle(Path(config.base_model or default_base_model()), embed_bundle,
                       private_key, [e.question for e in faq], model_id="embed-demo")
    click.echo("    ask: matcher and sentence encoder exported, int8, checked, signed")
    return [match_bundle, embed_bundle]


def _print_guide(config: DemoConfig, work: Path, data_dir: Path) -> None:
    url = f"http://{config.host}:{config.port}"
    click.echo(f"""
The loop ran end to end. Try it yourself:
  Student page:   {url}/   (class code: {config.class_id}, any nickname)
  Grade via API:  curl -s -X POST {url}/api/v1/grade -H 'Content-Type: application/json' \\
                    -d '{{"question": "Why do we have seasons?", "reference": "Because the Earth is tilted.", "answer": "the tilt of the earth"}}'
  Health:         {url}/readyz
  Sync to a stick:  .venv/bin/chalkbox box sync export --data-dir {data_dir} --to {work / 'usb-stick'}
  Ingest centrally: .venv/bin/chalkbox train ingest {work / 'usb-stick'} --store {work / 'central' / 'chalkbox.db'}
""")
