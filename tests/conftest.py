"""Shared fixtures: a tiny trained grader, its signed bundle, a provisioned box, a live server.

Everything is real (Trainer, optimum export, onnxruntime, gunicorn); only the
model is tiny so the suite stays fast on two cores.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import Server, build_tiny_bert, free_port  # noqa: E402


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_base, tmp_path_factory) -> Path:
    from training.recipes import train_grader

    out = tmp_path_factory.mktemp("tiny-grader")
    train_grader(None, out, base_model=str(tiny_base), epochs=6, learning_rate=1e-3,
                 batch_size=32, max_length=64, model_id="grade-tiny")
    return out


@pytest.fixture(scope="session")
def keypair(tmp_path_factory) -> tuple[Path, Path]:
    from export.keys import keygen

    return keygen(tmp_path_factory.mktemp("keys") / "fleet.pem")


@pytest.fixture(scope="session")
def check_data():
    from appliance.content import demo_content_dir, read_labelled_content
    from appliance.inference.pairs import labelled_grade_pairs

    exercises, answers = read_labelled_content(demo_content_dir())
    return labelled_grade_pairs(exercises, answers, "reference|answer")




@pytest.fixture(scope="session")
def build_request_for(tiny_checkpoint, keypair, check_data):
    from export.build import BuildRequest
    from export.checks import CheckLimits

    def make(out_dir: Path, **changes) -> BuildRequest:
        pairs, labels = check_data
        request = BuildRequest(model_dir=tiny_checkpoint, out_dir=out_dir, signing_key=keypair[0],
                               check_pairs=pairs, check_labels=labels, limits=CheckLimits())
        return dataclasses.replace(request, **changes)
    return make


@pytest.fixture(scope="session")
def grade_bundle(build_request_for, tmp_path_factory) -> Path:
    from export.build import build_bundle

    out = tmp_path_factory.mktemp("bundles") / "grade-tiny"
    build_bundle(build_request_for(out, version="1.0.0"))
    return out


def provision_box(root: Path, keypair, bundle: Path) -> Path:
    from appliance.content import demo_content_dir
    from appliance.provision import ProvisionRequest, provision

    config = provision(ProvisionRequest(data_dir=root / "box", school_id="school-1",
                                        public_key=keypair[1], bundle=bundle,
                                        content_dir=demo_content_dir(), port=free_port()))
    return config.data_dir


@pytest.fixture
def box_dir(tmp_path, keypair, grade_bundle) -> Path:
    return provision_box(tmp_path, keypair, grade_bundle)


def start_server(data_dir: Path, log_path: Path) -> Server:
    from appliance.config import load_config
    from appliance.serve import gunicorn_argv, gunicorn_env

    config = load_config(data_dir, {"threads": 8})
    return Server(gunicorn_argv(config), gunicorn_env(config),
                  f"http://{config.host}:{config.port}", log_path).wait_ready()


@pytest.fixture(scope="module")
def live_box(tmp_path_factory, keypair, grade_bundle):
    """One provisioned box served by real gunicorn for a whole test module."""
    root = tmp_path_factory.mktemp("live")
    server = start_server(provision_box(root, keypair, grade_bundle), root / "gunicorn.log")
    server.data_dir = root / "box"
    yield server
    server.stop()


def start_centre(root: Path, boxes: dict[str, str], publish_bundles=(), public_key=None) -> Server:
    """The centre's ingest server under real gunicorn; ``boxes``: {box_id: school_id}.
    The returned server carries ``tokens`` {box_id: token} and ``config``."""
    from training.centre import CentreConfig, gunicorn_argv, gunicorn_env
    from training.fleet import Fleet
    from training.publish import publish

    config = CentreConfig.from_dir(root)
    with Fleet(config.store_path) as fleet:
        tokens = {box: fleet.add_box(box, school) for box, school in boxes.items()}
    for bundle in publish_bundles:
        publish(bundle, config.published_root, public_key)
    port = free_port()
    server = Server(gunicorn_argv("127.0.0.1", port), gunicorn_env(root),
                    f"http://127.0.0.1:{port}", root / "gunicorn.log").wait_ready()
    server.port, server.config, server.tokens = port, config, tokens
    return server


@pytest.fixture(scope="session")
def ask_bundles(tiny_base, keypair, tmp_path_factory):
    """A tiny matcher trained on the demo FAQ and a tiny sentence encoder, both signed."""
    from appliance.content import demo_content_dir, read_faq
    from export.build import BuildRequest, build_bundle
    from export.embed import build_embed_bundle
    from training.recipes import faq_match_pairs, train_matcher

    root = tmp_path_factory.mktemp("ask")
    train_matcher(None, root / "match-ckpt", base_model=str(tiny_base), epochs=6,
                  learning_rate=1e-3, batch_size=32, max_length=96)
    pairs, labels = faq_match_pairs(read_faq(demo_content_dir() / "faq.csv"))
    build_bundle(BuildRequest(model_dir=root / "match-ckpt", out_dir=root / "match",
                              signing_key=keypair[0], check_pairs=pairs, check_labels=labels,
                              version="1.0.0"))
    texts = [e.question for e in read_faq(demo_content_dir() / "faq.csv")]
    build_embed_bundle(tiny_base, root / "embed", keypair[0], texts, version="1.0.0")
    return root / "match", root / "embed"


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by playwright (never a downloaded browser)."""
    import shutil

    from playwright.sync_api import sync_playwright

    from helpers import CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def demo_box_service(root: Path, box_id: str, school_id: str, **settings):
    """A box with the demo content and no model, in-process: records are written exactly as
    the web service writes them (for tests of the teacher's and the centre's use of them)."""
    from appliance.config import BoxConfig
    from appliance.content import demo_content_dir
    from appliance.privacy import ensure_secret
    from appliance.provision import import_content
    from appliance.service import BoxService

    config = BoxConfig(data_dir=root / "box", box_id=box_id, school_id=school_id,
                       **{"review_below": 0.7, **settings}).validate()
    ensure_secret(config.secrets_dir)
    import_content(config, demo_content_dir())
    return BoxService(config)
