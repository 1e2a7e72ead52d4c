#!/usr/bin/env bash
# The GPU half of bench/train.py: fp32 vs bf16 fine-tuning samples/s on CUDA, one run.
# For a machine with an NVIDIA GPU of compute capability >= 8.0 (bf16) and this repository's
# .venv installed with a CUDA build of torch. Run from anywhere:
#     bench/train_gpu.sh [--steps N] [--quick]      (JSON: $OUT/train_gpu.json or ./train_gpu.json)
# The data: ../shared/datasets/semeval2013-task7-2way/sciEntsBank/train (pass --data DIR else).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__} (a CPU-only build?)")
if not torch.cuda.is_bf16_supported():
    sys.exit(f"{torch.cuda.get_device_name(0)} has no bf16: nothing to compare")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv || true
exec "$PYTHON" bench/train.py --gpu --steps 100 --json "${OUT:-.}/train_gpu.json" "$@"
