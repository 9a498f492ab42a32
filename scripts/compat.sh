#!/usr/bin/env bash
# `make compat`: the GPU machine's software stack here, on the CPU: Python 3.12, torch 2.11 and
# torchvision 0.26, only the other packages that machine has (docs: the device's package list),
# and the service's packages from wheelhouse/ installed the way benchmarks/gpu_check.sh installs
# them there. Then the fast tests, a short CLI train/generate/export and the GPU check's dry run.
# Downloads torch 2.11 once (several GB); not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON312=${PYTHON312:-python3.12}
VENV=${COMPAT_VENV:-.compat/venv}
TORCH_COMPAT=${TORCH_COMPAT:-torch==2.11.0 torchvision==0.26.0}
# On the GPU machine already (a subset that the project and its fast tests touch).
MACHINE_PACKAGES="numpy pillow tqdm httpx prometheus-client onnx onnxruntime safetensors tensorboard jinja2 pytest pytest-timeout hypothesis"
log=.compat/install.log
mkdir -p .compat
if ! "$PYTHON312" -c "import sys; assert sys.version_info[:2] == (3, 12)" 2>/dev/null; then
  # a pyenv install that is not the active version answers through its own folder only
  PYTHON312=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)
  [ -n "$PYTHON312" ] || { echo "make compat needs Python 3.12 (none found; set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
fi
compgen -G "wheelhouse/*.whl" >/dev/null || { echo "no wheelhouse/: run make wheelhouse first" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV (Python 3.12) with $TORCH_COMPAT; pip's output goes to $log"
  "$PYTHON312" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >>"$log" 2>&1
  "$VENV/bin/python" -m pip install $TORCH_COMPAT >>"$log" 2>&1 || { echo "installing torch failed: see $log" >&2; exit 1; }
  "$VENV/bin/python" -m pip install $MACHINE_PACKAGES >>"$log" 2>&1 || { echo "installing failed: see $log" >&2; exit 1; }
fi
PY=$VENV/bin/python
"$PY" -c "import torch, torchvision, sys; print('compat:', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__)"
if "$PY" -c "import fastapi" 2>/dev/null; then
  echo "fastapi is installed in $VENV: the GPU machine has none; delete $VENV and run again" >&2; exit 1
fi
site=.compat/site
rm -rf "$site"
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" wheelhouse/*.whl
export PYTHONPATH=$PWD/$site:$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== fast tests"
"$PY" -m pytest -q -m "not slow and not browser" -p no:cacheprovider
echo "== the command line: synth, train, generate, export"
"$PY" -m model synth --out "$work/data" --count 64
"$PY" -m model train --data "$work/data" --out "$work/run" --epochs 2 --ngf 8 --ndf 8 --batch-size 16 \
  --swd-images 0 --device cpu --cache-dir "$work/cache"
"$PY" -m model generate --run "$work/run" --out "$work/grid.png" --n 16
"$PY" -m model export --run "$work/run" --format onnx --out "$work/g.onnx"
"$PY" -m model export --run "$work/run" --format safetensors --out "$work/g.safetensors"
echo "== the GPU check's dry run (the service's packages installed from wheelhouse/, as there)"
PYTHONPATH=$PWD PY=$PY TMPDIR=$work bash benchmarks/gpu_check.sh --dry-run --results "$work/results"
echo "compat: all passed on Python 3.12 with $("$PY" -c 'import torch; print("torch", torch.__version__)')"
