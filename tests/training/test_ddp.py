"""finetune() runs unchanged under torchrun: two CPU processes (gloo), a tiny random BERT."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import free_port

REPO = Path(__file__).resolve().parents[2]

# Runs on every rank. CheckpointInfo.save is wrapped (the real save still runs) to count which
# ranks write chalkbox.json.
DRIVER = """
import json, os, sys
from pathlib import Path

import export.checkpoint as checkpoint
from training.finetune import FinetuneConfig, finetune

work = Path(sys.argv[1])
rank = os.environ["RANK"]
real_save = checkpoint.CheckpointInfo.save

def counted_save(self, model_dir):
    with open(work / "saves.log", "a") as log:
        log.write(rank + "\\n")
    real_save(self, model_dir)

checkpoint.CheckpointInfo.save = counted_save
data = json.loads((work / "data.json").read_text())
config = FinetuneConfig(output_dir=work / "out", base_model=data["base"], epochs=2,
                        batch_size=16, max_length=48, learning_rate=1e-3, tensorboard=False)
metrics = finetune(config, (data["train"], data["train_labels"]),
                   (data["eval"], data["eval_labels"]))
(work / f"done-{rank}.json").write_text(json.dumps(metrics))
"""


@pytest.mark.slow
def test_finetune_under_torchrun_with_two_cpu_processes(tiny_base, check_data, tmp_path):
    pairs, labels = check_data
    correct = [i for i, x in enumerate(labels) if x == "correct"]
    incorrect = [i for i, x in enumerate(labels) if x == "incorrect"]
    train_ids, eval_ids = correct[:24] + incorrect[:24], correct[24:36] + incorrect[24:36]
    (tmp_path / "data.json").write_text(json.dumps({
        "base": str(tiny_base),
        "train": [pairs[i] for i in train_ids], "train_labels": [labels[i] for i in train_ids],
        "eval": [pairs[i] for i in eval_ids], "eval_labels": [labels[i] for i in eval_ids]}))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": ""}  # gloo on the CPU even where a GPU exists
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={free_port()}",
         str(tmp_path / "driver.py"), str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]

    done = [json.loads((tmp_path / f"done-{rank}.json").read_text()) for rank in (0, 1)]
    assert done[0] == done[1] and done[0]["n"] == 24  # both ranks: the gathered validation
    assert (tmp_path / "saves.log").read_text().split() == ["0"]  # chalkbox.json: rank 0, once
    out = tmp_path / "out"
    info = json.loads((out / "chalkbox.json").read_text())
    assert info["metrics"]["training"]["processes"] == 2
    # 48 pairs / (16 per process x 2 processes) = 2 steps an epoch
    assert info["metrics"]["training"]["steps"] == 4
    assert info["metrics"]["validation"] == done[0]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in (out / "trainer").glob("checkpoint-*")) == \
        ["checkpoint-2", "checkpoint-4"]
