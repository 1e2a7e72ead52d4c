"""Full-size simulation of training rounds (issue 8): does each round make the model better,
and do teacher labels chosen by uncertainty sampling beat a random sample of the same size?

    .venv/bin/python bench/rounds.py [--rounds 3] [--budget 250] [--quick] [--json PATH]

Real MiniLM (the packaged all-MiniLM-L6-v2), real SciEntsBank data. The training answers are
shuffled (seeded) into a seed set the centre starts with (``--seed-fraction``, labelled) and
``--rounds`` equal batches that "arrive from classrooms" unlabelled. Each round, the current
model grades the arriving answers exactly as the box does (best reference decides,
export.evaluate.judge), the box's review sampler (appliance.review.select_for_review) picks
``--budget`` of them for the teacher, the teacher's label is the gold label, and the next
model is fine-tuned from the base on everything labelled so far. The same budget is spent on a
seeded random sample in a parallel arm. After each round both models are scored on the
held-out SciEntsBank test-unseen-answers split.

Not a CI test: about 20-30 minutes on 2 CPU cores (``--quick``: a few minutes, smaller model
budget, noisy numbers only good for checking the plumbing).
"""
from __future__ import annotations

import argparse
import os
import random
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


def train(exercises, answers, out: Path, args) -> Path:
    config = FinetuneConfig(output_dir=out, epochs=args.epochs, learning_rate=args.lr,
                            batch_size=16, max_length=128, seed=args.seed)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=250, help="teacher labels per round")
    parser.add_argument("--seed-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--strategies", default="uncertainty,random,mixed",
                        help="review strategies compared (appliance.review.STRATEGIES)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    strategies = tuple(args.strategies.split(","))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    data = read_semeval(args.data / "train")
    test = read_semeval(args.data / "test-unseen-answers")
    answers = list(data.answers)
    random.Random(args.seed).shuffle(answers)
    if args.quick:
        answers, test = answers[:900], test.limited(150)
        args.budget, args.epochs = min(args.budget, 60), min(args.epochs, 1.0)
    n_seed = int(len(answers) * args.seed_fraction)
    seed_set, pool = answers[:n_seed], answers[n_seed:]
    batches = [pool[i::args.rounds] for i in range(args.rounds)]
    print(f"seed {len(seed_set)} labelled answers; {args.rounds} rounds of {len(batches[0])} "
          f"arriving answers; {args.budget} teacher labels per round; test n={len(test.answers)}")

    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(dir=c.REPO / "var") as scratch:
        scratch = Path(scratch)
        model0 = train(data.exercises, seed_set, scratch / "round-0", args)
        baseline = score(model0, test)
        rows.append({"round": 0, "labels": 0, **{f"{s}_accuracy": baseline["accuracy"]
                                                 for s in strategies},
                     **{f"{s}_macro_f1": baseline["macro_f1"] for s in strategies}})
        print(f"round 0 (seed only): accuracy {baseline['accuracy']:.4f}")
        current = {s: model0 for s in strategies}
        labelled = {s: list(seed_set) for s in strategies}
        for number, arriving in enumerate(batches, start=1):
            row = {"round": number, "labels": args.budget * number}
            for strategy in strategies:
                model = CheckpointModel(current[strategy])
                records = grade_arrivals(model, data.exercises, arriving)
                chosen = select_for_review(records, budget=args.budget, strategy=strategy,
                                           seed=args.seed + number)
                index = {r.id: i for i, r in enumerate(records)}
                picked = [arriving[index[r.id]] for r in chosen]
                row[f"{strategy}_picked_wrong"] = sum(
                    1 for r in chosen if r.prediction != arriving[index[r.id]].label)
                labelled[strategy] += picked
                current[strategy] = train(data.exercises, labelled[strategy],
                                          scratch / f"{strategy}-{number}", args)
                figures = score(current[strategy], test)
                row[f"{strategy}_accuracy"] = figures["accuracy"]
                row[f"{strategy}_macro_f1"] = figures["macro_f1"]
                print(f"round {number} {strategy}: {len(labelled[strategy])} labelled, "
                      f"accuracy {figures['accuracy']:.4f}", flush=True)
            rows.append(row)

    main_strategy = strategies[-1] if "mixed" in strategies else strategies[0]
    accuracies = {s: [r[f"{s}_accuracy"] for r in rows] for s in strategies}
    summary = {
        "rows": rows, "budget": args.budget, "seed_answers": len(seed_set), "quick": args.quick,
        "strategies": strategies, "seconds": round(time.perf_counter() - started, 1),
        "accuracy_rises": {s: all(b > a for a, b in zip(acc, acc[1:]))
                           for s, acc in accuracies.items()},
    }
    if "random" in strategies:
        summary["final_gain_vs_random"] = {
            s: rows[-1][f"{s}_accuracy"] - rows[-1]["random_accuracy"]
            for s in strategies if s != "random"}
    names = " / ".join(strategies)
    table = []
    for r in rows:
        number = r["round"]
        rises = (r[f"{main_strategy}_accuracy"] > accuracies[main_strategy][number - 1]
                 if number else None)
        table.append((f"round {number} ({r['labels']} teacher labels) accuracy: {names}",
                      " / ".join(f"{r[f'{s}_accuracy']:.4f}" for s in strategies),
                      f"{main_strategy} rises" if number else "",
                      c.verdict(rises) if number else ""))
        if number:
            table.append((f"round {number} wrong grades among the reviewed: {names}",
                          " / ".join(str(r[f"{s}_picked_wrong"]) for s in strategies), "", ""))
    for s, gain in summary.get("final_gain_vs_random", {}).items():
        table.append((f"final accuracy, {s} - random", f"{gain:+.4f}", "> 0", c.verdict(gain > 0)))
    c.print_table("training rounds on SciEntsBank (held-out: test-unseen-answers)", table,
                  [f"{summary['seconds']} s on {os.cpu_count()} cores; one seed: differences "
                   "of a point or two are within noise"])
    c.write_json(str(args.json) if args.json else None, summary)


if __name__ == "__main__":
    main()
