"""Benchmark fine-tuning throughput (issue 3's performance goal): one run, ratios in that run.

    .venv/bin/python bench/train.py [--steps 30] [--quick] [--json PATH] [--data DIR] [--gpu]

The packaged all-MiniLM-L6-v2 (training.finetune.default_base_model) as a cross-encoder on the
real SciEntsBank 2-way training answers (`reference|answer` pairs, read with
training.data.semeval.read_semeval + appliance.inference.pairs, as `chalkbox train grade
--format semeval` reads them), batch 16, max length 128, built by training.finetune.build_trainer
exactly as finetune() builds its Trainer (no evaluation, no checkpoints, no TensorBoard).

Each variant trains a fresh copy of the model for warm-up + --steps optimizer steps; the clock
runs from the end of the last warm-up step to the end of the last step (a Trainer callback),
so model loading, tokenising and the first steps' lazy set-up are not counted:
  * CPU (default): (a) every batch padded to max_length 128, no length grouping, vs (b) dynamic
    padding (each batch to its longest pair) with group_by_length. Goal: (b) / (a) >= 1.5
    (`dynamic_padding_speedup`).
  * --gpu (bench/train_gpu.sh): fp32 vs bf16 (autocast), both with dynamic padding, on CUDA
    (`bf16_speedup`); no goal, a figure for the issue.
samples/s = batch size x timed steps / timed seconds. The machine may be shared: run it when
it is quiet, and compare ratios, not absolute figures, across machines.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import _common as c  # sets up sys.path for the repo

from appliance.inference.pairs import labelled_grade_pairs

DEFAULT_DATA = c.REPO.parent / "shared" / "datasets" / "semeval2013-task7-2way" / \
    "sciEntsBank" / "train"
GOAL_DYNAMIC_PADDING_SPEEDUP = 1.5
BATCH_SIZE = 16
MAX_LENGTH = 128


def read_pairs(data_dir: Path) -> tuple[list, list]:
    from training.data.semeval import read_semeval

    data = read_semeval(data_dir)
    return labelled_grade_pairs(data.exercises, data.answers, "reference|answer")


def make_step_clock(cuda: bool):
    """A Trainer callback that notes the time at the end of each optimizer step."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:  # kernels are asynchronous: wait for the step to really finish
                import torch

                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    return StepClock()


def measure(name: str, train: tuple[list, list], root: Path, steps: int, warmup: int,
            cuda: bool, **settings) -> dict:
    from training.finetune import FinetuneConfig, build_trainer

    config = FinetuneConfig(output_dir=root / name, batch_size=BATCH_SIZE,
                            max_length=MAX_LENGTH, max_steps=warmup + steps, keep_checkpoints=0,
                            tensorboard=False, report=False, **settings)
    setup = build_trainer(config, train, None)
    trainer = setup.trainer
    clock = make_step_clock(cuda)
    trainer.add_callback(clock)
    print(f"  {name}: {warmup} warm-up + {steps} timed steps ({setup.precision}) ...",
          flush=True)
    trainer.train()
    if len(clock.ends) != warmup + steps:
        raise SystemExit(f"{name}: {len(clock.ends)} steps ran, expected {warmup + steps}")
    seconds = clock.ends[-1] - clock.ends[warmup - 1]
    lengths = [len(batch["input_ids"][0])
               for batch, _ in zip(trainer.get_train_dataloader(), range(warmup + steps))]
    return {"samples_per_s": BATCH_SIZE * steps / seconds, "seconds": seconds,
            "step_ms_median": statistics.median(
                b - a for a, b in zip(clock.ends[warmup - 1:], clock.ends[warmup:])) * 1000,
            "mean_padded_length": statistics.fmean(lengths), "precision": setup.precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per variant")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="a SemEval-2013 2-way split directory")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="8 timed steps: a smoke run")
    parser.add_argument("--gpu", action="store_true", help="fp32 vs bf16 on CUDA instead")
    args = parser.parse_args()
    steps = 8 if args.quick else args.steps
    warmup = 2 if args.quick else 3
    if steps < 2:
        raise SystemExit("--steps must be >= 2")

    import torch

    from training.finetune import has_cuda

    cuda = has_cuda()
    if args.gpu and not (cuda and torch.cuda.is_bf16_supported()):
        raise SystemExit("--gpu needs a CUDA GPU with bf16 (compute capability 8.0 or newer)")
    train = read_pairs(args.data)
    device = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{len(train[0]):,} SciEntsBank training pairs from {args.data}; {device}", flush=True)

    root = c.scratch_dir("chalkbox-bench-train-")
    t_start = time.perf_counter()
    try:
        if args.gpu:
            first = measure("fp32", train, root, steps, warmup, cuda, precision="fp32")
            second = measure("bf16", train, root, steps, warmup, cuda, precision="bf16")
        else:
            first = measure("max_length", train, root, steps, warmup, cuda,
                            padding="max_length", precision="fp32")
            second = measure("dynamic", train, root, steps, warmup, cuda, padding="dynamic",
                             precision="fp32")
    finally:
        c.cleanup(root)
    total_s = time.perf_counter() - t_start
    ratio = second["samples_per_s"] / first["samples_per_s"]

    notes = [f"MiniLM-L6 cross-encoder, batch {BATCH_SIZE}, max length {MAX_LENGTH}, {device}; "
             f"{steps} timed steps after {warmup} warm-up steps per variant; "
             f"total run {total_s:.0f} s" + ("; QUICK run" if args.quick else ""),
             "one run: a shared or busy machine moves these figures; the ratio is the goal"]
    if args.gpu:
        rows = [("samples_per_s_fp32", c.fmt(first["samples_per_s"], 1), "", ""),
                ("samples_per_s_bf16", c.fmt(second["samples_per_s"], 1), "", ""),
                ("bf16_speedup", c.fmt(ratio, 2), "(no goal)", "")]
        figures = {"bf16_speedup": round(ratio, 3),
                   "samples_per_s_fp32": round(first["samples_per_s"], 2),
                   "samples_per_s_bf16": round(second["samples_per_s"], 2), "goals": {}}
        title = "Chalkbox fine-tuning benchmark, GPU (issue 3)"
    else:
        ok = ratio >= GOAL_DYNAMIC_PADDING_SPEEDUP
        rows = [("samples_per_s_max_length (pad to 128, no grouping)",
                 c.fmt(first["samples_per_s"], 1), "", ""),
                ("samples_per_s_dynamic (dynamic padding + group_by_length)",
                 c.fmt(second["samples_per_s"], 1), "", ""),
                ("  mean padded length: max_length / dynamic",
                 f"{first['mean_padded_length']:.0f} / {second['mean_padded_length']:.1f}", "",
                 ""),
                ("dynamic_padding_speedup", c.fmt(ratio, 2),
                 f">= {GOAL_DYNAMIC_PADDING_SPEEDUP}", c.verdict(ok))]
        figures = {"dynamic_padding_speedup": round(ratio, 3),
                   "samples_per_s_max_length": round(first["samples_per_s"], 2),
                   "samples_per_s_dynamic": round(second["samples_per_s"], 2),
                   "mean_padded_length_max_length": round(first["mean_padded_length"], 1),
                   "mean_padded_length_dynamic": round(second["mean_padded_length"], 1),
                   "goals": {"dynamic_padding_speedup": ok}}
        title = "Chalkbox fine-tuning benchmark (issue 3)"
    c.print_table(title, rows, notes)
    c.write_json(args.json, {"quick": args.quick, "steps": steps, "warmup_steps": warmup,
                             "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH,
                             "device": device, **figures,
                             "step_ms_median": {"first": round(first["step_ms_median"], 1),
                                                "second": round(second["step_ms_median"], 1)}})


if __name__ == "__main__":
    main()
