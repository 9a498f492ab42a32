#!/usr/bin/env bash
# The whole GPU check in one command, for a GPU machine that may have no network: the service on
# CUDA, training speed, the `fast` preset, G's time (benchmarks/gpu_check.py; under 8 minutes).
# Where fastapi & co. are not installed, the wheels `make wheelhouse` downloaded into wheelhouse/
# are installed into a private folder first (nothing is fetched).
#   bash benchmarks/gpu_check.sh              # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run    # anywhere: the same on the CPU at a tiny size
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$(command -v python3)}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
if ! "$PY" -c "import fastapi, uvicorn, celery, pydantic_settings" 2>/dev/null; then
  if compgen -G "wheelhouse/*.whl" >/dev/null; then
    site=${TMPDIR:-/tmp}/dcgan-faces-site
    echo "installing the service's packages from wheelhouse/ into $site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" wheelhouse/*.whl
    export PYTHONPATH=$site:$PYTHONPATH
  else
    echo "fastapi, uvicorn, celery or pydantic-settings is missing and there is no wheelhouse/:" >&2
    echo "run 'make wheelhouse' on a machine with network and bring wheelhouse/ along (docs/deploy.md)" >&2
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"
# The check keeps its own budget (450 s); this is the guard behind it (GPU_CHECK_TIMEOUT: the tests' dry run on a loaded CPU).
log=${OUT:-${TMPDIR:-/tmp}}/gpu_check.log
timeout "${GPU_CHECK_TIMEOUT:-500}" "$PY" benchmarks/gpu_check.py "$@" 2>&1 | tee "$log"
