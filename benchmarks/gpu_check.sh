#!/usr/bin/env bash
# One script for a lent GPU machine (torch 2.11 there, no network, nothing to install):
# training speed of the seed's loop vs ours at the seed's config, projected 200-epoch time,
# one epoch of each other preset, and G's time for a 64-image grid. About 6 minutes on an H100.
#   device run:  bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python - <<'PY'
import torch, torchvision, PIL, numpy
print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda)
PY
timeout 470 python benchmarks/gpu_check.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_check.log"
