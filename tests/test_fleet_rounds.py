"""The fleet simulation (issue 8): three boxes, a centre, three training rounds, real parts.

Three boxes of one school, each in its own data dir and served by its own gunicorn; the
centre's ingest server under gunicorn; tiny models. Students are simulated from SciEntsBank
training answers held back from the centre's seed data, and their teacher labels the answers
the review page offers (the box's uncertainty sampling) with the dataset's gold label.
Box A syncs by network, box B by a USB stick the centre reads, box C stays offline in round
1 and syncs by network from round 2. Rounds run `chalkbox train round` as the centre would.

Asserted: every interaction reaches the centre exactly once; a round is promoted exactly
when its candidate beats production on the fixed evaluation set by the margin (and no slice
drops too much); every box ends on the promoted model; a rejected model never reaches a box
nor the published directory nor a stick.
"""
from __future__ import annotations

import csv
import html
import json
import re
import uuid
from pathlib import Path

import pytest
import requests

from appliance.config import load_config, to_toml
from appliance.content import demo_content_dir
from appliance.provision import ProvisionRequest, provision
from appliance.store import open_outbox
from conftest import start_centre, start_server
from helpers import free_port
from tests_cli import run_chalkbox
from training.store import CentralStore

SCI = Path(__file__).resolve().parents[2] / "shared/datasets/semeval2013-task7-2way/sciEntsBank"
needs_data = pytest.mark.skipif(not SCI.is_dir(), reason="../shared/datasets not present")
SCHOOL = "school-1"
TEACHER = ("ms-okafor", "secret-pass-1")
QUESTIONS = 10


def write_content(directory: Path, exercises, answers=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "exercises.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "subject", "grade_band", "question", "reference_answer"])
        for e in exercises:
            writer.writerow([e.id, e.subject.replace("/", "-"), e.grade_band, e.question,
                             e.reference_answers[0]])
    if answers is not None:
        with open(directory / "answers.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["exercise_id", "answer", "label"])
            for a in answers:
                writer.writerow([a.exercise_id, a.answer, a.label])
    (directory / "faq.csv").write_bytes((demo_content_dir() / "faq.csv").read_bytes())
    return directory


class Box:
    """A provisioned box, its gunicorn, and the simulated class and teacher using it."""

    def __init__(self, name: str, root: Path, keypair, bundle, content: Path, **link):
        config = provision(ProvisionRequest(
            data_dir=root / name, school_id=SCHOOL, public_key=keypair[1], bundle=bundle,
            content_dir=content, port=free_port(), school_secret=b"s" * 32,
            teacher_username=TEACHER[0], teacher_password=TEACHER[1], **link))
        # every answer of a tiny model is unsure: let the teacher's budget decide what is shown
        config.config_path.write_text(to_toml({**config.settings(), "review_below": 1.0}))
        self.name, self.data_dir = name, config.data_dir
        self.server = start_server(self.data_dir, root / f"{name}.log")
        self.gold: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.server.base_url

    def students_answer(self, answers) -> None:
        for i, item in enumerate(answers):
            key = str(uuid.uuid4())
            body = {"exercise_id": item.exercise_id, "answer": item.answer, "class_id": "5a",
                    "nickname": f"student-{i % 7}", "idempotency_key": key}
            response = requests.post(f"{self.url}/api/v1/answers", json=body, timeout=30)
            assert response.status_code == 201, response.text
            # a tablet that lost the reply sends again: stored once
            again = requests.post(f"{self.url}/api/v1/answers", json=body, timeout=30)
            assert again.status_code == 200 and again.json()["resent"]
            self.gold[response.json()["record_id"]] = item.label

    def teacher_reviews(self) -> int:
        """Log in, label every answer the review page offers with its gold label."""
        session = requests.Session()
        page = session.get(f"{self.url}/teacher/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        session.post(f"{self.url}/teacher/login", timeout=30, data={
            "username": TEACHER[0], "password": TEACHER[1], "csrf_token": token})
        page = session.get(f"{self.url}/teacher/review", timeout=30)
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        offered = [i for i in dict.fromkeys(re.findall(r"/teacher/review/([^/\"]+)/label",
                                                       page.text)) if i in self.gold]
        for record_id in offered:
            response = session.post(f"{self.url}/teacher/review/{record_id}/label", timeout=30,
                                    data={"label": self.gold[record_id], "csrf_token": token},
                                    allow_redirects=False)
            assert response.status_code == 302, response.text
        return len(offered)

    def model_version(self) -> str:
        return requests.get(f"{self.url}/api/v1/model", timeout=30).json()["version"]

    def record_ids(self) -> set[str]:
        return {r.id for r in open_outbox(load_config(self.data_dir)).records()}

    def sync_network(self) -> None:
        result = run_chalkbox("box", "sync", "now", "--data-dir", self.data_dir)
        assert result.returncode == 0, result.stderr

    def sync_usb(self, stick: Path) -> None:
        result = run_chalkbox("box", "sync", "usb", "--data-dir", self.data_dir, "--stick",
                              stick, "--install-models")
        assert result.returncode == 0, result.stderr


def run_round(centre_dir: Path, keypair, tiny_base: Path, seed: Path, stick: Path,
              min_gain: float, *extra) -> dict:
    result = run_chalkbox(
        "train", "round", "--centre-dir", centre_dir, "--key", keypair[0], "--eval-data",
        SCI / "test-unseen-answers", "--eval-limit", 120, "--seed-data", seed, "--stick", stick,
        "--base-model", tiny_base, "--teacher-epochs", 2, "--teacher-lr", "1e-3",
        "--continue-epochs", 2, "--continue-lr", "1e-3",
        "--student-layers", 1, "--student-epochs", 2, "--student-lr", "1e-3",
        "--max-length", 64, "--min-gain", min_gain, *extra, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    rounds = sorted((centre_dir / "rounds").glob("round-*"))
    return json.loads((rounds[-1] / "round.json").read_text())


def published_versions(centre_dir: Path) -> set[str]:
    """Versions of the published grade bundles (a bundle is named <model_id>-<version>)."""
    return {p.name.removeprefix("grade-") for p in (centre_dir / "published").glob("*/grade/*")
            if p.is_dir()}


def latest_published(centre_dir: Path) -> str:
    return (centre_dir / "published/all/grade/LATEST").read_text().strip().removeprefix("grade-")


@needs_data
@pytest.mark.slow
def test_three_boxes_three_rounds(tmp_path, tiny_base, keypair, grade_bundle):
    from training.data.semeval import read_semeval

    data = read_semeval(SCI / "train")
    exercises = sorted(data.exercises, key=lambda e: e.id)[:QUESTIONS]
    chosen = {e.id for e in exercises}
    answers = [a for a in data.answers if a.exercise_id in chosen]
    seed_answers, held_back = answers[::3], [a for i, a in enumerate(answers) if i % 3]
    seed = write_content(tmp_path / "seed", exercises, seed_answers)
    box_content = write_content(tmp_path / "box-content", exercises)
    batches = [held_back[i::6] for i in range(6)]        # per (round, box): disjoint answers

    boxes = {"A": ("box-a", "network"), "B": ("box-b", "usb"), "C": ("box-c", "offline")}
    centre_dir = tmp_path / "centre"
    stick = tmp_path / "media" / "stick"
    stick.mkdir(parents=True)
    centre = start_centre(centre_dir, {box_id: SCHOOL for box_id, _ in boxes.values()})
    running = []
    try:
        fleet = {}
        for name, (box_id, mode) in boxes.items():
            link = {"box_id": box_id}
            if mode != "usb":
                link.update(central_url=centre.base_url, token=centre.tokens[box_id])
            fleet[name] = Box(box_id, tmp_path, keypair, grade_bundle, box_content, **link)
            running.append(fleet[name].server)
        a, b, c = fleet["A"], fleet["B"], fleet["C"]
        first_version = a.model_version()

        # --- round 1: C is offline ---------------------------------------------------------
        for i, box in enumerate((a, b, c)):
            box.students_answer(batches[i])
            assert box.teacher_reviews() > 0
        a.sync_network()
        b.sync_usb(stick)
        state = run_round(centre_dir, keypair, tiny_base, seed, stick, min_gain=0.0)
        assert state["stages"]["decide"]["promote"]            # nothing published yet: first
        assert state["stages"]["teacher"]["continued_from"] is None   # from the base model
        assert state["stages"]["teacher"]["from_base_because"] == "nothing is in production yet"
        round1 = state["stages"]["export"]["version"]
        assert latest_published(centre_dir) == round1
        a.sync_network()
        b.sync_usb(stick)                                       # acks + the new model
        assert a.model_version() == round1 and b.model_version() == round1
        assert c.model_version() == first_version               # offline: still the old one

        # --- round 2: C syncs for the first time; promoted only if really better -------------
        for i, box in enumerate((a, b, c)):
            box.students_answer(batches[3 + i])
            box.teacher_reviews()
        a.sync_network()
        b.sync_usb(stick)
        c.sync_network()
        state = run_round(centre_dir, keypair, tiny_base, seed, stick, 0.0, "--continue-teacher")
        # it builds on the teacher of round 1, whose model is in production
        assert state["stages"]["teacher"]["continued_from"] == "round-0001"
        teacher_info = json.loads((Path(state["stages"]["teacher"]["model"])
                                   / "chalkbox.json").read_text())
        assert teacher_info["base_model"].endswith("round-0001/teacher")
        evaluated, decision = state["stages"]["evaluate"], state["stages"]["decide"]
        gain = evaluated["candidate"]["macro_f1"] - evaluated["production"]["macro_f1"]
        assert evaluated["production"]["version"] == round1
        slice_ok = all(ch["change"] >= -0.05 for ch in decision["slice_changes"] if ch["n"] >= 20)
        assert decision["promote"] == (gain >= 0.0 and slice_ok), decision
        promoted = state["stages"]["export"]["version"] if decision["promote"] else round1
        assert latest_published(centre_dir) == promoted

        # --- round 3: a margin no model can meet; the rejected model goes nowhere -----------
        # and it is interrupted after its snapshot: the next run resumes it, not a new round
        stopped = run_round(centre_dir, keypair, tiny_base, seed, stick, 1.0,
                            "--stop-after", "snapshot")
        assert list(stopped["stages"]) == ["ingest", "snapshot"]
        state = run_round(centre_dir, keypair, tiny_base, seed, stick, min_gain=1.0)
        assert state["round_id"] == stopped["round_id"] == "round-0003"
        assert state["stages"]["snapshot"] == stopped["stages"]["snapshot"]   # not redone
        rejected = state["stages"]["export"]["version"]
        assert not state["stages"]["decide"]["promote"]
        assert state["stages"]["publish"]["published"] is None
        assert rejected not in published_versions(centre_dir)
        assert latest_published(centre_dir) == promoted
        assert not any(rejected in p.name for p in stick.rglob("*"))
        # round 3 continued from the teacher of the round whose model is in production
        continued = state["stages"]["teacher"]["continued_from"]
        assert continued == ("round-0002" if promoted != round1 else "round-0001")
        report = (centre_dir / "rounds" / state["round_id"] / "report.html").read_text()
        assert html.escape(f"{continued}'s teacher (production's)") in report

        for box in (a, c):
            box.sync_network()
        b.sync_usb(stick)
        for box in (a, b, c):
            assert box.model_version() == promoted, box.name
        b.sync_usb(stick)      # B's last records ride the stick; the centre reads it once more
        result = run_chalkbox("train", "ingest", stick, "--centre-dir", centre_dir,
                              "--key", keypair[0])
        assert result.returncode == 0, result.stderr

        # --- exactly once: every record of every box, each once, nothing else ---------------
        on_boxes = set().union(*(box.record_ids() for box in (a, b, c)))
        with CentralStore(centre_dir / "chalkbox.db") as store:
            central = [r.id for r in store.records()]
        assert len(central) == len(set(central))
        assert set(central) == on_boxes
        labelled = sum(1 for box in (a, b, c) for r in open_outbox(
            load_config(box.data_dir)).records() if r.kind == "teacher_label")
        assert labelled > 0
    finally:
        for server in running:
            server.stop()
        centre.stop()
