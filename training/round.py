"""``chalkbox train round``: from what the classrooms sent to a better model, or none.

One round, as stages recorded in ``rounds/<round_id>/round.json`` (training.round_state):

    ingest    teachers' USB sticks into the central store (network pushes are already there)
    snapshot  the training set: seed data + field data (teacher labels gold), cleaned,
              split by question, hashed into a snapshot id
    teacher   fine-tune the grading teacher on the snapshot: by default it continues from
              the teacher of the round that made production (--from-base: from the base)
    student   distil it into the small student the box runs (or export the teacher)
    export    ONNX, int8, parity and agreement checks, signed bundle (failed checks: no bundle)
    evaluate  the candidate and the production bundle on the fixed evaluation set, same code
              the box runs (export.evaluate), with per-slice figures
    decide    training.promotion: better by the margin, and no slice worse than allowed
    publish   only if promoted: the bundle becomes LATEST for network pull, and goes onto the
              round's USB sticks
    report    rounds/<round_id>/report.html

A killed round resumes at its first unrecorded stage; a finished round is never re-run (the
next ``chalkbox train round`` starts the next one). A snapshot equal to production's is "no
new data": the round still evaluates and records, but the decision is not to promote.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from appliance.bundle import read_manifest_unverified
from appliance.fsutil import atomic_write_text
from appliance.inference.pairs import grade_pair, labelled_grade_pairs

from . import round_data
from .centre import CentreConfig
from .errors import TrainingError
from .promotion import Decision, PromotionRule, decide
from .round_state import RoundState, finished_rounds, open_round

log = logging.getLogger(__name__)

ROUNDS_DIR = "rounds"
GRADE_TASK = "grade"


@dataclasses.dataclass
class RoundConfig:
    centre_dir: Path
    signing_key: Path
    eval_data: Path                                # the fixed evaluation set (SemEval or content)
    seed_data: tuple[Path, ...] = ()               # SemEval split dirs or content dirs
    sticks: tuple[Path, ...] = ()                  # teachers' USB sticks to ingest and refill
    school_id: str | None = None                   # publish for one school (None: all)
    base_model: str | None = None                  # None: the packaged MiniLM
    # Fine-tune the teacher of the round that made production (continue_epochs at
    # continue_lr) instead of the base model (teacher_epochs at teacher_lr): each round then
    # builds on the last (bench/rounds.py --warm-start, docs/experiments.md E12). The first
    # round, or one after a hand-published model, trains from the base.
    continue_teacher: bool = True
    continue_epochs: float = 1.0
    continue_lr: float = 2e-5
    input_format: str = "reference|answer"
    teacher_epochs: float = 3.0
    teacher_lr: float = 3e-5
    batch_size: int = 16
    max_length: int = 128
    student_layers: int = 3                        # 0: export the teacher itself
    student_epochs: float = 3.0
    student_lr: float = 1e-4
    alpha: float = 0.5
    kd_temperature: float = 2.0
    target: str | None = None
    rule: PromotionRule = dataclasses.field(default_factory=PromotionRule)
    use_weak: bool = False
    eval_limit: int | None = None
    seed: int = 42

    def __post_init__(self):
        self.centre_dir, self.signing_key = Path(self.centre_dir), Path(self.signing_key)
        self.eval_data = Path(self.eval_data)
        self.seed_data = tuple(Path(p) for p in self.seed_data)
        self.sticks = tuple(Path(p) for p in self.sticks)
        problems = [
            (self.signing_key.is_file(), f"signing key {self.signing_key} not found"),
            (self.eval_data.exists(), f"evaluation data {self.eval_data} not found"),
            (self.teacher_epochs > 0 and self.student_epochs > 0 and self.continue_epochs > 0,
             "epochs must be > 0"),
            (0 < self.teacher_lr < 1 and 0 < self.student_lr < 1 and 0 < self.continue_lr < 1,
             "learning rates in (0, 1)"),
            (0 <= self.student_layers <= 48, "student_layers between 0 and 48"),
            (0.0 <= self.alpha <= 1.0, "alpha between 0 and 1"),
            (self.kd_temperature > 0, "kd_temperature > 0"),
        ]
        for ok, message in problems:
            if not ok:
                raise TrainingError(f"bad round setting: {message}",
                                    hint="see 'chalkbox train round --help'")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rule"] = dataclasses.asdict(self.rule)
        return json.loads(json.dumps(data, default=str))

    @property
    def centre(self) -> CentreConfig:
        return CentreConfig.from_dir(self.centre_dir)

    @property
    def public_key(self) -> Path:
        from export.keys import public_key_path_for

        return public_key_path_for(self.signing_key)


def production_bundle(config: RoundConfig) -> Path | None:
    from .publish import latest

    return latest(config.centre.published_root, GRADE_TASK, config.school_id)


# --- stages: each takes (config, state, stage_dir) and returns the outputs it records ---------
def stage_ingest(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    from export.keys import load_private_key

    from .fleet import Fleet
    from .store import CentralStore
    from .usb import ingest_stick

    centre = config.centre.prepare()
    key = load_private_key(config.signing_key)
    sticks = []
    with CentralStore(centre.store_path) as store, Fleet(centre.store_path) as fleet:
        for stick in config.sticks:
            result = ingest_stick(store, stick, private_key=key,
                                  published_root=centre.published_root, fleet=fleet)
            sticks.append({"stick": str(stick),
                           "schools": sorted(set(result.report.schools_by_box().values())),
                           "added": sum(r.added for r in result.report.results),
                           "refused": result.report.refused})
        total = store.count()
        kinds, confidences = collections.Counter(), collections.Counter()
        for record in store.records():
            kinds[record.kind] += 1
            if record.kind == "answer" and record.confidence is not None:
                low = min(int(record.confidence * 10), 9) / 10
                confidences[f"{low:.1f}-{low + 0.1:.1f}"] += 1
    return {"sticks": sticks, "records_in_store": total, "records_by_kind": dict(kinds),
            "confidences": dict(sorted(confidences.items()))}


def stage_snapshot(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    dataset = round_data.build(config.seed_data, config.centre.store_path,
                               use_weak=config.use_weak, seed=config.seed)
    round_data.save(dataset, out)
    return {"snapshot": dataset.snapshot, "train": len(dataset.train),
            "validation": len(dataset.evaluation), "exercises": len(dataset.exercises),
            "field_labels": dataset.report.get("field_labels", 0), "report": dataset.report}


def stage_teacher(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    from .finetune import FinetuneConfig, finetune

    dataset = round_data.load(state.stage_dir("snapshot"))
    chosen = _teacher_base(config, state, out) if config.continue_teacher else \
        {"reason": "--from-base"}
    continuing = "teacher" in chosen
    tune = FinetuneConfig(output_dir=out,
                          base_model=chosen["teacher"] if continuing else config.base_model,
                          input_format=config.input_format,
                          epochs=config.continue_epochs if continuing else config.teacher_epochs,
                          learning_rate=config.continue_lr if continuing else config.teacher_lr,
                          batch_size=config.batch_size, max_length=config.max_length,
                          seed=config.seed, dataset_snapshot=dataset.snapshot, resume=True)
    metrics = finetune(tune, *_pairs(dataset, config.input_format))
    return {"model": str(out), "validation": metrics, "continued_from": chosen.get("round"),
            "from_base_because": chosen.get("reason")}


BASE_FILE = "continued-from.json"


def _teacher_base(config: RoundConfig, state: RoundState, out: Path) -> dict[str, str]:
    """What this round's teacher starts from, chosen once and recorded in the stage dir (a
    resumed round keeps it): {"round", "teacher"} to continue from production's teacher, or
    {"reason"} to train from the base model."""
    recorded = out / BASE_FILE
    if recorded.is_file():
        chosen = json.loads(recorded.read_text())
    else:
        found = production_teacher(config)
        chosen = {"round": found[0], "teacher": str(found[1])} if isinstance(found, tuple) \
            else {"reason": found}
        if "reason" in chosen:
            log.warning("%s: the teacher trains from the base model: %s", state.round_id,
                        chosen["reason"])
        atomic_write_text(recorded, json.dumps(chosen) + "\n")  # a crash leaves it whole or absent
    if "teacher" in chosen and not (Path(chosen["teacher"]) / "chalkbox.json").is_file():
        raise TrainingError(f"{chosen['round']}'s teacher ({chosen['teacher']}) is gone; "
                            "this round was to continue from it",
                            hint="restore it, or run the round with --from-base")
    return chosen


def production_teacher(config: RoundConfig) -> tuple[str, Path] | str:
    """(round id, teacher checkpoint) of the round that made the model now in production,
    or why there is none (nothing published yet; published by hand, or its round gone)."""
    production = production_bundle(config)
    if production is None:
        return "nothing is in production yet"
    version = read_manifest_unverified(production).version
    for past in reversed(finished_rounds(config.centre_dir / ROUNDS_DIR)):
        if past.output("decide").get("promote") and \
                past.output("export").get("version") == version:
            return past.round_id, past.stage_dir("teacher").resolve()
    return f"the production model {production.name} was not made by a round here"


def stage_student(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    teacher = Path(state.output("teacher")["model"])
    if config.student_layers == 0:
        return {"model": str(teacher), "distilled": False}
    from .distill import DistillConfig, distill

    dataset = round_data.load(state.stage_dir("snapshot"))
    settings = DistillConfig(output_dir=out, teachers=(teacher,),
                             num_layers=config.student_layers, epochs=config.student_epochs,
                             learning_rate=config.student_lr, alpha=config.alpha,
                             temperature=config.kd_temperature, batch_size=config.batch_size,
                             max_length=config.max_length, seed=config.seed,
                             dataset_snapshot=dataset.snapshot)
    unlabelled = [grade_pair(config.input_format, q, ref, answer)
                  for q, ref, answer in dataset.unlabelled]
    metrics = distill(settings, *_pairs(dataset, config.input_format),
                      unlabelled=unlabelled or None)
    return {"model": str(out), "distilled": True, "validation": metrics,
            "unlabelled_pairs": len(unlabelled)}


def stage_export(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    from export.build import BuildRequest, build_bundle
    from export.errors import ExportError

    evaluation = round_data.evaluation_set(config.eval_data, config.eval_limit)
    pairs, labels = labelled_grade_pairs(evaluation.exercises, evaluation.answers,
                                         config.input_format)
    production = production_bundle(config)
    parent = read_manifest_unverified(production).version if production else None
    request = BuildRequest(model_dir=Path(state.output("student")["model"]), out_dir=out,
                           signing_key=config.signing_key, check_pairs=pairs,
                           check_labels=labels, target=config.target,
                           version=state.round_id, model_id="grade", parent_version=parent)
    try:
        manifest = build_bundle(request)
    except ExportError as exc:     # a failed check: no bundle, and nothing to promote
        log.warning("round %s: export refused: %s", state.round_id, exc)
        return {"bundle": None, "problem": str(exc)}
    return {"bundle": str(out), "version": manifest.version,
            "checks": manifest.metrics.get("export", {})}


def stage_evaluate(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    from appliance.bundle import verify_bundle
    from appliance.inference.engine import OnnxModel
    from export.evaluate import evaluate_model

    evaluation = round_data.evaluation_set(config.eval_data, config.eval_limit)
    results: dict[str, Any] = {"candidate": None, "production": None}
    bundles = {"candidate": state.output("export")["bundle"], "production": production_bundle(config)}
    for role, bundle in bundles.items():
        if bundle is None:
            continue
        manifest = verify_bundle(Path(bundle), config.public_key)
        result = evaluate_model(OnnxModel(Path(bundle), manifest), evaluation, "semeval")
        (out / f"{role}.json").write_text(json.dumps(result, indent=2) + "\n")
        results[role] = {"bundle": str(bundle), "version": manifest.version,
                         "snapshot": manifest.dataset_snapshot,
                         **{k: result[k] for k in ("n", "accuracy", "macro_f1", "ece", "slices")}}
    return results


def stage_decide(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    evaluated = state.output("evaluate")
    candidate, production = evaluated["candidate"], evaluated["production"]
    snapshot = state.output("snapshot")["snapshot"]
    if production is not None and production.get("snapshot") == snapshot:
        decision = Decision(False, [f"no new data: snapshot {snapshot} is production's"])
    else:
        decision = decide(candidate, production, config.rule)
    return decision.to_dict()


def stage_publish(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    if not state.output("decide")["promote"]:
        return {"published": None}
    from appliance.sync.protocol import MODELS_DIR_ON_STICK

    from .publish import publish
    from .usb import copy_model_to_stick, stick_root

    bundle = Path(state.output("export")["bundle"])
    dest = publish(bundle, config.centre.prepare().published_root, config.public_key,
                   config.school_id)
    copied = []
    for stick in state.output("ingest")["sticks"]:
        root = stick_root(Path(stick["stick"]))
        # the schools whose boxes use this stick: those that sent bundles on it, and those
        # it already carries models for
        on_stick = root / MODELS_DIR_ON_STICK
        schools = set(stick["schools"]) | ({p.name for p in on_stick.iterdir() if p.is_dir()}
                                           if on_stick.is_dir() else set())
        for school in sorted(schools):
            if config.school_id in (None, school):
                copied.append(str(copy_model_to_stick(dest, root, school)))
    return {"published": str(dest), "sticks": copied}


def stage_report(config: RoundConfig, state: RoundState, out: Path) -> dict[str, Any]:
    from .round_report import write_round_report

    return {"report": str(write_round_report(state, state.directory / "report.html"))}


STAGE_FUNCTIONS: dict[str, Callable[[RoundConfig, RoundState, Path], dict[str, Any]]] = {
    "ingest": stage_ingest, "snapshot": stage_snapshot, "teacher": stage_teacher,
    "student": stage_student, "export": stage_export, "evaluate": stage_evaluate,
    "decide": stage_decide, "publish": stage_publish, "report": stage_report,
}


def run_round(config: RoundConfig, *, echo: Callable[[str], None] = log.info,
              stop_after: str | None = None) -> RoundState:
    """Run (or resume) the current round to its end, or through ``stop_after``."""
    state = open_round(config.centre_dir / ROUNDS_DIR, config.to_dict())
    while (stage := state.next_stage) is not None:
        out = state.stage_dir(stage)
        # the teacher keeps its Trainer checkpoints across a crash so it can resume from them
        if stage != "teacher":
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        echo(f"{state.round_id}: {stage} ...")
        outputs = STAGE_FUNCTIONS[stage](config, state, out)
        state.finish(stage, outputs)
        echo(f"{state.round_id}: {stage} done")
        if stage == stop_after:
            break
    return state


# --- helpers ---------------------------------------------------------------------------------
def _pairs(dataset: round_data.RoundDataset, input_format: str):
    train = labelled_grade_pairs(dataset.exercises, dataset.train, input_format)
    evaluation = labelled_grade_pairs(dataset.exercises, dataset.evaluation, input_format)
    return train, (evaluation if evaluation[0] else None)

