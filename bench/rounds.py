"""Full-size simulation of training rounds (issue 8): does each round make the model better,
and do teacher labels chosen by uncertainty sampling beat a random sample of the same size?

    .venv/bin/python bench/rounds.py [--rounds 3] [--budget 250] [--train-seeds 1,2,3]
        [--warm-start] [--strategies uncertainty,random] [--quick] [--json PATH]

Real MiniLM (the packaged all-MiniLM-L6-v2), real SciEntsBank data. The training answers are
shuffled (seeded) into a seed set the centre starts with (``--seed-fraction``, labelled) and
``--rounds`` equal batches that "arrive from classrooms" unlabelled. Each round, the current
model grades the arriving answers exactly as the box does (best reference decides,
export.evaluate.judge), the box's review sampler (appliance.review.select_for_review) picks
``--budget`` of them for the teacher, the teacher's label is the gold label, and the next
model is fine-tuned on everything labelled so far: from the base model, or with
``--warm-start`` from the current model (one short epoch), as a centre would continue from
production. The same budget is spent on a seeded random sample in a parallel arm.
``--train-seeds 1,2,3`` repeats the whole run with each training seed and reports the mean per
round (and its range): one seed moves held-out accuracy by a point or two. After each round both models are scored on the
held-out SciEntsBank test-unseen-answers split.

Not a CI test: about 20-30 minutes on 2 CPU cores (``--quick``: a few minutes, smaller model
budget, noisy numbers only good for checking the plumbing).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import _common as c  # noqa: F401  (sets up sys.path for the repo)

from appliance.inference.pairs import labelled_grade_pairs
from appliance.records import InteractionRecord
from appliance.review import select_for_review
from export.evaluate import evaluate_model, grade_answers
from training.data.semeval import read_semeval
from training.evaluate import CheckpointModel
from training.finetune import FinetuneConfig, finetune

DATA = c.REPO.parent / "shared/datasets/semeval2013-task7-2way/sciEntsBank"


def train(exercises, answers, out: Path, *, epochs: float, lr: float, seed: int,
          base: Path | None = None) -> Path:
    """Fine-tune on ``answers``: from the packaged MiniLM, or (warm start) from ``base``, the
    model the boxes run now."""
    config = FinetuneConfig(output_dir=out, epochs=epochs, learning_rate=lr, batch_size=16,
                            max_length=128, seed=seed,
                            base_model=str(base) if base is not None else None)
    finetune(config, labelled_grade_pairs(exercises, answers, config.input_format), None)
    return out


def grade_arrivals(model, exercises, arrivals) -> list[InteractionRecord]:
    """The records the box would have written for these answers (prediction, confidence)."""
    grades, _ = grade_answers(model, exercises, arrivals)
    return [InteractionRecord.create(
        id=f"{i:08d}-0000-7000-8000-000000000000", box_id="box-sim", school_id="school-sim",
        kind="answer", exercise_id=item.exercise_id, prediction=label, confidence=confidence)
        for i, (item, (label, confidence)) in enumerate(zip(arrivals, grades))]


def score(model_dir: Path, test) -> dict:
    result = evaluate_model(CheckpointModel(model_dir), test, "semeval")
    return {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}


def simulate(data, test, seed_set, batches, strategies, train_seed: int, scratch: Path,
             args) -> list[dict]:
    """One run of the rounds with one training seed: a row per round, per strategy its
    held-out accuracy and macro-F1, and how many of the reviewed grades were wrong."""
    model0 = train(data.exercises, seed_set, scratch / "round-0", epochs=args.epochs,
                   lr=args.lr, seed=train_seed)
    baseline = score(model0, test)
    rows = [{"round": 0, "labels": 0,
             **{f"{s}_{k}": v for s in strategies for k, v in baseline.items()}}]
    print(f"[seed {train_seed}] round 0 (seed only): accuracy {baseline['accuracy']:.4f}",
          flush=True)
    current = {s: model0 for s in strategies}
    labelled = {s: list(seed_set) for s in strategies}
    for number, arriving in enumerate(batches, start=1):
        row = {"round": number, "labels": args.budget * number}
        for strategy in strategies:
            records = grade_arrivals(CheckpointModel(current[strategy]), data.exercises,
                                     arriving)
            chosen = select_for_review(records, budget=args.budget, strategy=strategy,
                                       seed=args.seed + number)
            index = {r.id: i for i, r in enumerate(records)}
            labelled[strategy] += [arriving[index[r.id]] for r in chosen]
            row[f"{strategy}_picked_wrong"] = sum(
                1 for r in chosen if r.prediction != arriving[index[r.id]].label)
            out = scratch / f"{strategy}-{number}"
            if args.warm_start:  # continue from the production model on everything labelled
                current[strategy] = train(data.exercises, labelled[strategy], out,
                                          epochs=args.warm_epochs, lr=args.warm_lr,
                                          seed=train_seed, base=current[strategy])
            else:
                current[strategy] = train(data.exercises, labelled[strategy], out,
                                          epochs=args.epochs, lr=args.lr, seed=train_seed)
            figures = score(current[strategy], test)
            row.update({f"{strategy}_{k}": v for k, v in figures.items()})
            print(f"[seed {train_seed}] round {number} {strategy}: {len(labelled[strategy])} "
                  f"labelled, accuracy {figures['accuracy']:.4f}", flush=True)
        rows.append(row)
    return rows


def mean_rows(runs: list[list[dict]], strategies) -> list[dict]:
    """Per round, the mean over training seeds of every figure, and each accuracy's range."""
    rows = []
    for per_seed in zip(*runs):
        row = {"round": per_seed[0]["round"], "labels": per_seed[0]["labels"]}
        for key in per_seed[0]:
            if key not in row:
                row[key] = statistics.fmean(r[key] for r in per_seed)
        for s in strategies:
            values = [r[f"{s}_accuracy"] for r in per_seed]
            row[f"{s}_accuracy_min"], row[f"{s}_accuracy_max"] = min(values), max(values)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=250, help="teacher labels per round")
    parser.add_argument("--seed-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=42,
                        help="shuffles the answers into seed set and rounds; seeds the sampler")
    parser.add_argument("--train-seeds", default="42",
                        help="comma-separated training seeds; the table shows their mean")
    parser.add_argument("--warm-start", action="store_true",
                        help="each round continues from the current model (--warm-epochs at "
                             "--warm-lr on everything labelled) instead of training from the base")
    parser.add_argument("--warm-epochs", type=float, default=1.0)
    parser.add_argument("--warm-lr", type=float, default=2e-5)
    parser.add_argument("--strategies", default="uncertainty,random,mixed",
                        help="review strategies compared (appliance.review.STRATEGIES)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    strategies = tuple(args.strategies.split(","))
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    data = read_semeval(args.data / "train")
    test = read_semeval(args.data / "test-unseen-answers")
    answers = list(data.answers)
    random.Random(args.seed).shuffle(answers)
    if args.quick:
        answers, test = answers[:900], test.limited(150)
        args.budget, args.epochs = min(args.budget, 60), min(args.epochs, 1.0)
        args.warm_epochs = min(args.warm_epochs, 0.5)
    n_seed = int(len(answers) * args.seed_fraction)
    seed_set, pool = answers[:n_seed], answers[n_seed:]
    batches = [pool[i::args.rounds] for i in range(args.rounds)]
    print(f"seed {len(seed_set)} labelled answers; {args.rounds} rounds of {len(batches[0])} "
          f"arriving answers; {args.budget} teacher labels per round; test n={len(test.answers)}; "
          f"training seeds {train_seeds}; "
          f"{'warm start' if args.warm_start else 'each round from the base model'}")

    started = time.perf_counter()
    runs = []
    for train_seed in train_seeds:
        with tempfile.TemporaryDirectory(dir=c.REPO / "var") as scratch:
            runs.append(simulate(data, test, seed_set, batches, strategies, train_seed,
                                 Path(scratch), args))
    rows = mean_rows(runs, strategies)

    main_strategy = strategies[-1] if "mixed" in strategies else strategies[0]
    accuracies = {s: [r[f"{s}_accuracy"] for r in rows] for s in strategies}
    summary = {
        "rows": rows, "runs": runs, "train_seeds": train_seeds, "budget": args.budget,
        "seed_answers": len(seed_set), "quick": args.quick, "strategies": strategies,
        "warm_start": args.warm_start, "epochs": args.epochs, "lr": args.lr,
        "warm_epochs": args.warm_epochs, "warm_lr": args.warm_lr,
        "seconds": round(time.perf_counter() - started, 1),
        "accuracy_rises": {s: all(b > a for a, b in zip(acc, acc[1:]))
                           for s, acc in accuracies.items()},
    }
    if "random" in strategies:
        summary["final_gain_vs_random"] = {
            s: rows[-1][f"{s}_accuracy"] - rows[-1]["random_accuracy"]
            for s in strategies if s != "random"}
    names = " / ".join(strategies)
    mean_of = f"mean of {len(train_seeds)} seeds" if len(train_seeds) > 1 else "one seed"
    table = []
    for r in rows:
        number = r["round"]
        rises = (r[f"{main_strategy}_accuracy"] > accuracies[main_strategy][number - 1]
                 if number else None)
        table.append((f"round {number} ({r['labels']} teacher labels) accuracy ({mean_of}): "
                      f"{names}",
                      " / ".join(f"{r[f'{s}_accuracy']:.4f}" for s in strategies),
                      f"{main_strategy} rises" if number else "",
                      c.verdict(rises) if number else ""))
        if len(train_seeds) > 1:
            table.append((f"round {number} accuracy range over seeds: {names}",
                          " / ".join(f"{r[f'{s}_accuracy_min']:.3f}-{r[f'{s}_accuracy_max']:.3f}"
                                     for s in strategies), "", ""))
        if number:
            table.append((f"round {number} wrong grades among the reviewed: {names}",
                          " / ".join(f"{r[f'{s}_picked_wrong']:.0f}" for s in strategies),
                          "", ""))
    for s, gain in summary.get("final_gain_vs_random", {}).items():
        table.append((f"final accuracy, {s} - random", f"{gain:+.4f}", "> 0", c.verdict(gain > 0)))
    c.print_table("training rounds on SciEntsBank (held-out: test-unseen-answers)", table,
                  [f"{summary['seconds']} s on {os.cpu_count()} cores; {mean_of}"
                   f"{'; warm start' if args.warm_start else ''}: differences of a point or "
                   "two are within one seed's noise"])
    c.write_json(str(args.json) if args.json else None, summary)


if __name__ == "__main__":
    main()
