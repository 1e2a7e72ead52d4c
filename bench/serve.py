"""Benchmark the box serving a class (issue 5 goals): real gunicorn on loopback, one run.

    .venv/bin/python bench/serve.py [--models-dir DIR | --bundle DIR --match-bundle DIR
        --embed-bundle DIR] [--public-key PEM] [--quick] [--json PATH]

Models: --models-dir holding a grade, a match and an embed bundle (e.g. var/demo/bundles, or
a box's models dir with <task>/current), or each named (overrides --models-dir), signed with
--public-key's key. With none, tiny random BERTs are built for the run (needs the `train`
extra) and the report says so: they show the serving path, not the int8 students' speed.

Workload (bench/kb.py): 70% grade (POST /api/v1/answers) / 30% ask (POST /api/v1/ask) over a
2,000-answer knowledge base written as the scratch box's faq.csv; asks are KB questions as
written or reworded, and WikiQA questions no entry answers (forwarded to the teacher).
Against a box provisioned in a scratch dir (mDNS off) and served as `chalkbox box serve`
does (appliance.serve.gunicorn_argv), it measures:
  * the first ask after a start, which loads the ask models and embeds the knowledge base
    (once per worker); done before the phases and timed apart;
  * class burst: 40 tablets start together (the teacher's "go"); each sends a request, waits,
    thinks 1-3 s, goes again, for 60 s (--quick: 15 s): errors (anything but a 201 with
    saved: true) and p50/p95/p99 per request type;
  * capacity: 40 clients, no think time, 20 s (--quick: 10 s): requests/s and percentiles
    with batching on and, restarted with `batching = false`, off; and the bare engine on the
    same mix from 40 threads, gunicorn stopped: grade_answer and
    appliance.ask.answer_with_settings (what BoxService.ask calls) on the installed models,
    no HTTP, no outbox;
  * the batching ceiling: the grade model's pairs/s from one caller at batch 1 and at the
    box's largest batch, on the mix's pairs (what batching can buy from the model itself).
Clients are threads with their own keep-alive connections (bench/_common.py: Client).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path

import _common as c  # sets up sys.path for the repo
import kb

from appliance.config import load_config, to_toml
from appliance.serve import gunicorn_argv, gunicorn_env, wait_ready

TABLETS = 40
CLIENTS = 40
THINK_S = (1.0, 3.0)
CLASS_ID = "5a"
TASKS = ("grade", "match", "embed")
KINDS = ("grade", "ask")

GOAL_ERRORS = 0
GOAL_GRADE_P95_MS = 150.0
GOAL_ASK_P95_MS = 200.0
GOAL_SERVED_VS_ENGINE = 0.60
GOAL_BATCHING_SPEEDUP = 1.5
# Two phases' requests/s compare only if both completed about the mix sent: a type stuck past
# the window leaves the other to fill it, and the ratio then says nothing about the mix.
MIX_TOLERANCE = 0.10


# --- the bundles and the box -----------------------------------------------------------------
def bundles_in(models_dir: Path) -> dict[str, Path]:
    """{task: bundle dir} of the bundles directly under ``models_dir`` or, as in a box's
    models dir, under its <task>/current."""
    if not models_dir.is_dir():
        raise SystemExit(f"--models-dir {models_dir} is not a directory")
    found: dict[str, Path] = {}
    for sub in sorted(models_dir.iterdir()):
        for candidate in (sub, sub / "current"):
            if (candidate / "manifest.json").is_file():
                task = json.loads((candidate / "manifest.json").read_text()).get("task")
                if task in found:
                    raise SystemExit(f"{models_dir} holds two {task} bundles ({found[task]}, "
                                     f"{candidate}): name one with --bundle/--match-bundle/"
                                     "--embed-bundle")
                found[task] = candidate.resolve()
                break
    return found


def provision_box(root: Path, bundles: dict[str, Path], public_key: Path,
                  content_dir: Path) -> Path:
    from appliance.models import install_bundle
    from appliance.provision import ProvisionRequest, provision

    config = provision(ProvisionRequest(data_dir=root / "box", school_id="school-bench-01",
                                        public_key=public_key, bundle=bundles["grade"],
                                        content_dir=content_dir, port=_free_port()))
    for task in ("match", "embed"):  # as the demo installs the ask models
        install_bundle(config.models_dir, bundles[task], config.public_key_path)
    return config.data_dir


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Box:
    """One gunicorn serving the box, started with the settings box.toml holds."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, **settings) -> "Box":
        settings = {**load_config(self.data_dir).settings(), **settings,
                    "mdns_name": ""}  # never announce a benchmark on the LAN
        self.data_dir.joinpath("box.toml").write_text(to_toml(settings))
        self.config = load_config(self.data_dir)
        log_path = self.data_dir.parent / "gunicorn.log"
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(gunicorn_argv(self.config), env=gunicorn_env(self.config),
                                        stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_ready(self.base_url, self.process, timeout=120)  # /readyz loads the grader
        except Exception as exc:
            self.stop()
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the box did not start: {exc}\n--- gunicorn log (tail) ---\n{tail}")
        return self

    def first_ask(self, question: str) -> float:
        """Seconds the first ask takes: /readyz loads only the grader, so this one loads the
        ask models and embeds the knowledge base. Every later ask finds them ready."""
        t0 = time.perf_counter()
        status, data = c.Client(self.config.host, self.config.port, timeout=600).request(
            "POST", "/api/v1/ask", json.dumps({"question": question, "class_id": CLASS_ID,
                                               "nickname": c.NICKNAMES[0]}).encode())
        if status != 201:
            raise SystemExit(f"the first ask failed: {status} {data[:300]!r}")
        return time.perf_counter() - t0

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        self.process = self._log = None

    def batch_stats(self) -> tuple[float, float]:
        """(sum, count) of chalkbox_inference_batch_size: pairs per model run (grade and
        match; the encoder is never batched), so far."""
        _, body = c.Client(self.config.host, self.config.port).request("GET", "/metrics")
        totals = {"_sum": 0.0, "_count": 0.0}
        for line in body.decode().splitlines():
            for suffix in totals:
                if line.startswith("chalkbox_inference_batch_size" + suffix):
                    totals[suffix] += float(line.rsplit(" ", 1)[1])
        return totals["_sum"], totals["_count"]


# --- the mix and the phases ----------------------------------------------------------------
def http_worker(box: Box, mix: kb.Mix):
    """A tablet: its own keep-alive connection and nickname; the mix's requests over HTTP."""
    def open_worker(i: int):
        client = c.Client(box.config.host, box.config.port)
        nickname = c.NICKNAMES[i % len(c.NICKNAMES)]

        def step(rng: random.Random) -> c.Step:
            kind, item = mix.draw(rng)
            body = {"class_id": CLASS_ID, "nickname": nickname, "idempotency_key": uuid.uuid4().hex}
            if kind == "grade":
                path = "/api/v1/answers"
                body.update(exercise_id=item[0].id, answer=item[1])
            else:
                path = "/api/v1/ask"
                body.update(question=item.text)
            try:
                status, data = client.request("POST", path, json.dumps(body).encode())
                reply = json.loads(data)
                if status != 201 or reply.get("saved") is not True:
                    return kind, f"{kind} {status}: {data[:200]!r}", None
            except Exception as exc:  # counted, never hidden
                client.close()
                return kind, f"{kind}: {exc!r}", None
            if kind == "grade":
                return kind, None, None
            return kind, None, kb.ask_outcome(item, None if reply["forwarded"] else reply["faq_id"])

        def close() -> int:
            client.close()
            return client.reconnects
        return step, close
    return open_worker


def installed_model(config, task: str, kind):
    """The box's installed ``task`` bundle, verified and loaded as ``kind`` (OnnxModel or
    Embedder) with the box's onnxruntime threads, as the service loads it."""
    from appliance.bundle import verify_bundle
    from appliance.models import current_bundle_dir

    target = current_bundle_dir(config.models_dir, task)
    return kind(target, verify_bundle(target, config.public_key_path), config.inference_threads)


def run_engine(data_dir: Path, mix: kb.Mix, threads: int, seconds: float,
               seed: int) -> tuple[c.Phase, float]:
    """The bare engine on the mix from ``threads`` threads, no HTTP, no outbox: (phase,
    seconds taken to embed the knowledge base)."""
    from appliance.ask import KnowledgeBase, answer_with_settings
    from appliance.inference.engine import Embedder, OnnxModel
    from appliance.inference.grade import grade_answer
    from appliance.store import ContentStore

    config = load_config(data_dir)
    models = {task: installed_model(config, task, kind)
              for task, kind in (("grade", OnnxModel), ("match", OnnxModel), ("embed", Embedder))}
    knowledge = KnowledgeBase(ContentStore(config.content_path))
    t0 = time.perf_counter()
    knowledge.entries_and_vectors(models["embed"])
    kb_embed_s = time.perf_counter() - t0
    exercise, answer = mix.grades[0]
    grade_answer(models["grade"], exercise.question, exercise.reference_answers, answer)  # warm

    def open_worker(i: int):
        def step(rng: random.Random) -> c.Step:
            kind, item = mix.draw(rng)
            try:
                if kind == "grade":
                    grade_answer(models["grade"], item[0].question, item[0].reference_answers,
                                 item[1])
                    return kind, None, None
                result = answer_with_settings(knowledge, models["embed"], models["match"],
                                              item.text, config)
            except Exception as exc:
                return kind, f"engine {kind}: {exc!r}", None
            return kind, None, kb.ask_outcome(item, result.faq_id if result.answered else None)
        return step, lambda: 0
    return c.run_threads(threads, seconds, None, seed, open_worker), kb_embed_s


def batching_ceiling(data_dir: Path, mix: kb.Mix, n_pairs: int = 160) -> tuple[float, float, int]:
    """The grade model's pairs/s from one caller at batch 1 and in full batches of the box's
    largest size sorted by length (no padding waste), on the mix's own pairs: the most
    micro-batching can buy from the model on this CPU (the service adds HTTP and the store
    on top, which batching does not shrink)."""
    from appliance.inference.engine import OnnxModel
    from appliance.inference.pairs import grade_pair

    config = load_config(data_dir)
    model = installed_model(config, "grade", OnnxModel)
    fmt = model.manifest.input_format
    pairs = [grade_pair(fmt, e.question, e.reference_answers[0], a)
             for e, a in mix.grades[:n_pairs]]
    size = config.batch_max_size

    def one_at_a_time() -> float:
        t0 = time.perf_counter()
        for pair in pairs:
            model.logits([pair])
        return len(pairs) / (time.perf_counter() - t0)

    def batched() -> float:  # the best case: full batches of pairs of similar length
        t0 = time.perf_counter()
        model.logits_by_length(pairs, size)
        return len(pairs) / (time.perf_counter() - t0)
    batched()  # warm
    return one_at_a_time(), batched(), size


# --- the run -------------------------------------------------------------------------------
def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _pcts(phase: c.Phase, kind: str | None = None) -> str:
    return " / ".join(_ms(phase.pct(q, kind)) for q in (0.5, 0.95, 0.99))


def _rps(phase: c.Phase) -> str:
    return f"{phase.rps:,.1f} ({phase.share('ask'):.0%} ask)"


def _if_same_mix(ok: bool, *phases: c.Phase) -> bool | None:
    same = all(abs(p.share("ask") - kb.ASK_SHARE) <= MIX_TOLERANCE for p in phases)
    return ok if same else None


def _verdict(ok: bool | None) -> str:
    return "n/a: not the mix sent" if ok is None else c.verdict(ok)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def choose_bundles(args, parser, root: Path) -> tuple[dict[str, Path], Path, str]:
    """(bundle per task, public key, a note) from the arguments, else tiny built ones."""
    given = bundles_in(args.models_dir.resolve()) if args.models_dir else {}
    for task, path in (("grade", args.bundle), ("match", args.match_bundle),
                       ("embed", args.embed_bundle)):
        if path is not None:
            given[task] = path.resolve()
    if not given:
        print("no bundles given: building TINY random models (2 layers, hidden 32) for this "
              "run; figures show the serving path, not the int8 student bundles", flush=True)
        bundles, public_key = c.tiny_bundles(root / "tiny", TASKS)
        return bundles, public_key, "TINY random BERTs built for this run (not the int8 students)"
    missing = [t for t in TASKS if t not in given]
    if missing or args.public_key is None:
        parser.error(f"give all three bundles (missing: {', '.join(missing) or 'none'}) and "
                     "--public-key, or none for tiny built ones; e.g. --models-dir "
                     "var/demo/bundles --public-key var/demo/keys/fleet.pub.pem")
    return given, args.public_key.resolve(), "given bundles"


@dataclasses.dataclass
class Results:
    bundle_note: str
    asks: kb.AskWorkload
    config: object = None
    first_ask_s: float = 0.0
    kb_embed_s: float = 0.0
    burst: c.Phase | None = None
    cap_on: c.Phase | None = None
    cap_off: c.Phase | None = None
    engine: c.Phase | None = None
    batch_on: float = 0.0
    batch_off: float = 0.0
    ceiling: tuple[float, float, int] = (0.0, 0.0, 0)


def mean_batch(box: Box, phase_fn) -> tuple[c.Phase, float]:
    """Run a phase; also the mean pairs per model run during it (from /metrics)."""
    before = box.batch_stats()
    phase = phase_fn()
    after = box.batch_stats()
    return phase, (after[0] - before[0]) / max(1.0, after[1] - before[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="holds a grade, a match and an embed bundle (or <task>/current)")
    parser.add_argument("--bundle", type=Path, metavar="DIR", help="a signed grade bundle")
    parser.add_argument("--match-bundle", type=Path, metavar="DIR", help="a signed match bundle")
    parser.add_argument("--embed-bundle", type=Path, metavar="DIR", help="a signed embed bundle")
    parser.add_argument("--public-key", type=Path, metavar="PEM", help="the key that signed them")
    parser.add_argument("--datasets", type=Path, default=c.REPO.parent / "shared" / "datasets",
                        help="the shared datasets (read-only) the knowledge base is built from")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="15 s burst and 10 s capacity phases instead of 60 s and 20 s")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a box.toml setting for the served box, e.g. workers=2 or "
                             "inference_threads=1 (repeatable)")
    args = parser.parse_args()
    overrides = {}
    for item in args.settings:
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.isdigit() else value
    if not (args.datasets / "wikiqa").is_dir():
        parser.error(f"no WikiQA under --datasets {args.datasets}: the knowledge base is built "
                     "from the shared datasets (wikiqa/, semeval2013-task7-2way/)")

    burst_s, capacity_s, warm_s = (15.0, 10.0, 2.0) if args.quick else (60.0, 20.0, 5.0)
    root = c.scratch_dir("chalkbox-bench-serve-")
    t_start = time.perf_counter()
    box = None
    try:
        print(f"scratch dir {root} ({'quick' if args.quick else 'full'} run)", flush=True)
        bundles, public_key, note = choose_bundles(args, parser, root)
        asks = kb.build_workload(args.datasets, seed=args.seed)
        data_dir = provision_box(root, bundles, public_key,
                                 kb.write_content_dir(root / "content", asks.entries))
        mix = kb.Mix(kb.grade_pairs(), asks)
        run = Results(f"{note}: {installed_names(data_dir)}", asks)
        print(f"box {data_dir}; {len(mix.grades)} (exercise, answer) pairs; knowledge base of "
              f"{len(asks.entries):,}; {run.bundle_note}", flush=True)
        first_question = asks.questions["as written"][0].text

        box = Box(data_dir).start(batching=True, **overrides)
        run.config = config = box.config
        print(f"gunicorn: {config.workers} worker(s) x {config.threads} threads, batching on "
              f"(max {config.batch_max_size} pairs, {config.batch_max_wait_ms} ms)", flush=True)
        run.first_ask_s = box.first_ask(first_question)
        print(f"first ask (loads the ask models, embeds the KB): {run.first_ask_s:.1f} s; "
              f"class burst: {TABLETS} tablets, {kb.ASK_SHARE:.0%} ask, think "
              f"{THINK_S[0]:.0f}-{THINK_S[1]:.0f} s, {burst_s:.0f} s ...", flush=True)
        run.burst = c.run_threads(TABLETS, burst_s, THINK_S, args.seed, http_worker(box, mix))
        print(f"capacity, batching on: {CLIENTS} clients, no think time, {capacity_s:.0f} s ...",
              flush=True)
        run.cap_on, run.batch_on = mean_batch(box, lambda: c.run_threads(
            CLIENTS, capacity_s, None, args.seed + 1, http_worker(box, mix)))
        box.stop()

        print(f"bare engine: {CLIENTS} threads, {capacity_s:.0f} s (gunicorn stopped) ...",
              flush=True)
        run.engine, run.kb_embed_s = run_engine(data_dir, mix, CLIENTS, capacity_s, args.seed + 2)
        run.ceiling = batching_ceiling(data_dir, mix)

        print("capacity, batching off (box.toml batching = false, gunicorn restarted) ...",
              flush=True)
        box = Box(data_dir).start(batching=False)
        box.first_ask(first_question)
        c.run_threads(CLIENTS, warm_s, None, args.seed + 3, http_worker(box, mix))  # not counted
        run.cap_off, run.batch_off = mean_batch(box, lambda: c.run_threads(
            CLIENTS, capacity_s, None, args.seed + 4, http_worker(box, mix)))
        box.stop()
        box = None
    finally:
        if box is not None:
            box.stop()
        c.cleanup(root)
    report(run, args, burst_s, capacity_s, time.perf_counter() - t_start)


def installed_names(data_dir: Path) -> str:
    from appliance.bundle import verify_bundle
    from appliance.models import current_bundle_dir

    config = load_config(data_dir)
    return ", ".join(verify_bundle(current_bundle_dir(config.models_dir, t),
                                   config.public_key_path).name for t in TASKS)


def report(run: Results, args, burst_s: float, capacity_s: float, total_s: float) -> None:
    burst, cap_on, cap_off, engine, config = run.burst, run.cap_on, run.cap_off, run.engine, run.config
    errors = burst.errors + cap_on.errors + cap_off.errors
    grade_p95, ask_p95 = burst.pct(0.95, "grade"), burst.pct(0.95, "ask")
    served_vs_engine = cap_on.rps / engine.rps if engine.rps else 0.0
    speedup = cap_on.rps / cap_off.rps if cap_off.rps else 0.0
    ceiling = run.ceiling[1] / run.ceiling[0] if run.ceiling[0] else 0.0
    # Amdahl: batching shrinks only the engine's share of an unbatched served request's cost
    # (batching-off rps / engine rps: the rest is HTTP, Flask, the store), and that share by
    # at most the ceiling; so the served speedup batching can reach here is bounded by:
    share = min(1.0, cap_off.rps / engine.rps) if engine.rps else 0.0
    bound = 1 / ((1 - share) + share / ceiling) if ceiling else None
    goals = {"errors": errors == GOAL_ERRORS,
             "grade_p95_ms": grade_p95 is not None and grade_p95 <= GOAL_GRADE_P95_MS,
             "ask_p95_ms": ask_p95 is not None and ask_p95 <= GOAL_ASK_P95_MS,
             "served_vs_engine": _if_same_mix(served_vs_engine >= GOAL_SERVED_VS_ENGINE,
                                              cap_on, engine),
             "batching_speedup": _if_same_mix(speedup >= GOAL_BATCHING_SPEEDUP, cap_on, cap_off)}

    def per_kind(phase: c.Phase) -> list[tuple]:
        return [(f"  {k} p50 / p95 / p99 (ms)", _pcts(phase, k), "", "") for k in KINDS]
    rows = [
        (f"burst: requests grade / ask ({TABLETS} tablets, {burst_s:.0f} s)",
         f"{burst.count('grade'):,} / {burst.count('ask'):,}", "", ""),
        ("errors (burst + capacity)", f"{errors}", f"== {GOAL_ERRORS}",
         c.verdict(goals["errors"])),
        ("grade p50 / p95 / p99 (ms)", _pcts(burst, "grade"),
         f"p95 <= {GOAL_GRADE_P95_MS:.0f}", c.verdict(goals["grade_p95_ms"])),
        ("ask p50 / p95 / p99 (ms)", _pcts(burst, "ask"),
         f"p95 <= {GOAL_ASK_P95_MS:.0f}", c.verdict(goals["ask_p95_ms"])),
        (f"first ask after a start (s; embeds the {len(run.asks.entries):,} KB questions)",
         c.fmt(run.first_ask_s, 1), "", ""),
        (f"capacity_rps (batching on, {CLIENTS} clients, {capacity_s:.0f} s)",
         _rps(cap_on), "", ""),
        *per_kind(cap_on),
        ("  mean pairs per model run", c.fmt(run.batch_on, 1), "", ""),
        ("batching off: rps", _rps(cap_off), "", ""),
        *per_kind(cap_off),
        ("  mean pairs per model run", c.fmt(run.batch_off, 1), "", ""),
        (f"bare engine: requests/s ({CLIENTS} threads, same mix)", _rps(engine), "", ""),
        *per_kind(engine),
        ("served_vs_engine", c.fmt(served_vs_engine, 2), f">= {GOAL_SERVED_VS_ENGINE:.2f}",
         _verdict(goals["served_vs_engine"])),
        ("batching_speedup", c.fmt(speedup, 2), f">= {GOAL_BATCHING_SPEEDUP}",
         _verdict(goals["batching_speedup"])),
        (f"  ceiling: grade model pairs/s, one caller, batch 1 / {run.ceiling[2]}",
         f"{run.ceiling[0]:.0f} / {run.ceiling[1]:.0f} = {ceiling:.2f}x" if ceiling else "n/a",
         "", ""),
        ("  bound on batching_speedup: 1 / ((1 - s) + s / ceiling), s = off rps / engine rps",
         c.fmt(bound, 2) if bound else "n/a", "", ""),
    ]
    notes = [
        f"models: {run.bundle_note}",
        (f"mix: {1 - kb.ASK_SHARE:.0%} grade (POST /api/v1/answers: grade + durable store) / "
         f"{kb.ASK_SHARE:.0%} ask (POST /api/v1/ask: embed, retrieve, rerank + store); asks: "
         + ", ".join(f"{w:.0%} {k}" for k, w in kb.ASK_KINDS)),
        f"knowledge base: {len(run.asks.entries):,} entries: "
        + ", ".join(f"{k} {v}" for k, v in run.asks.sources.most_common()),
        "burst ask outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(burst.outcomes.items()))
                                  or "none") + " (answered at >= the matcher bundle's answer_above, else "
                                  f"ask_answer_above {config.ask_answer_above})",
        f"bare engine embedded the KB in {run.kb_embed_s:.1f} s (no HTTP)",
        (f"server: gunicorn {config.workers} worker x {config.threads} threads on loopback; "
         f"clients share the machine ({os.cpu_count()} CPUs) with it"),
        "finished after the window (not counted; the phase waits for them): " + "; ".join(
            f"{name} {sum(p.late.values())} ({p.late['ask']} ask)" for name, p in
            (("burst", burst), ("capacity on", cap_on), ("off", cap_off), ("engine", engine))),
        f"keep-alive reconnects: {burst.reconnects + cap_on.reconnects + cap_off.reconnects}; "
        f"total run {total_s:.0f} s" + ("; QUICK run" if args.quick else ""),
    ]
    for name, phase in (("burst", burst), ("capacity on", cap_on), ("capacity off", cap_off),
                        ("engine", engine)):
        if phase.error_samples:
            notes.append(f"{name} errors, first: {phase.error_samples[0]}")
    c.print_table("Chalkbox serving benchmark (issue 5)", rows, notes)

    def figures(phase: c.Phase, prefix: str) -> dict:
        return {f"{prefix}{k}_p{q}_ms": _round(phase.pct(q / 100, k))
                for k in KINDS for q in (50, 95, 99)}
    c.write_json(args.json, {
        "quick": args.quick, "bundle": run.bundle_note,
        "mix": {"grade": round(1 - kb.ASK_SHARE, 2), "ask": kb.ASK_SHARE,
                "ask_kinds": dict(kb.ASK_KINDS)},
        "kb_entries": len(run.asks.entries), "kb_sources": dict(run.asks.sources),
        "tablets": TABLETS, "burst_seconds": burst_s, "burst_requests": burst.ok,
        "burst_grade_requests": burst.count("grade"), "burst_ask_requests": burst.count("ask"),
        "errors": errors, **figures(burst, ""), "ask_outcomes_burst": dict(burst.outcomes),
        "first_ask_s": round(run.first_ask_s, 2), "engine_kb_embed_s": round(run.kb_embed_s, 2),
        "capacity_seconds": capacity_s, "capacity_rps": round(cap_on.rps, 2),
        "capacity_p95_ms": _round(cap_on.pct(0.95)), **figures(cap_on, "capacity_"),
        "capacity_batching_off_rps": round(cap_off.rps, 2),
        "capacity_batching_off_p95_ms": _round(cap_off.pct(0.95)),
        **figures(cap_off, "capacity_batching_off_"),
        "mean_batch_pairs_on": round(run.batch_on, 2),
        "mean_batch_pairs_off": round(run.batch_off, 2),
        "ask_share_completed": {"burst": round(burst.share("ask"), 3),
                                "capacity": round(cap_on.share("ask"), 3),
                                "capacity_batching_off": round(cap_off.share("ask"), 3),
                                "engine": round(engine.share("ask"), 3)},
        "late": {"burst": dict(burst.late), "capacity": dict(cap_on.late),
                 "capacity_batching_off": dict(cap_off.late), "engine": dict(engine.late)},
        "engine_rps": round(engine.rps, 2), "engine_p95_ms": _round(engine.pct(0.95)),
        **figures(engine, "engine_"),
        "served_vs_engine": round(served_vs_engine, 3), "batching_speedup": round(speedup, 3),
        "batching_ceiling": {"batch_1_pairs_per_s": round(run.ceiling[0], 1),
                             "batch_max_pairs_per_s": round(run.ceiling[1], 1),
                             "batch_max": run.ceiling[2], "ratio": round(ceiling, 3)},
        "batching_speedup_bound": round(bound, 3) if bound else None,
        "goals": goals,
    })


if __name__ == "__main__":
    main()
