#!/usr/bin/env bash
# `make install`: a virtual environment, PyTorch, then this project with its extras. pip's own
# output goes to $VENV/install.log; the screen gets one line per step, and the log's last lines
# when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PY=$VENV/bin/python
TORCH_PACKAGES=${TORCH_PACKAGES:-torch==2.14.1 torchvision==0.29.1}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
# Set by the Makefile when TORCH_PACKAGES came from the command line or the environment.
TORCH_CHOSEN=${TORCH_CHOSEN:-0}
LOG=$VENV/install.log

step() {  # step "what it does" command...: one line on the screen, everything else in the log
  local what=$1 start=$SECONDS
  shift
  printf '  %s ... ' "$what"
  echo "### $what: $*" >> "$LOG"
  if "$@" >> "$LOG" 2>&1; then
    echo "done ($((SECONDS - start)) s)"
  else
    echo "failed"
    echo "--- the last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
}

mkdir -p "$VENV"
: > "$LOG"
echo "installing into $VENV (pip's output: $LOG)"
if [ ! -x "$PY" ]; then
  step "creating the virtual environment with $($PYTHON --version 2>&1)" "$PYTHON" -m venv "$VENV"
fi
step "updating pip" "$PY" -m pip install --upgrade pip

if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
  index=()
  build="PyPI's default build"
  # On Linux with no NVIDIA GPU, PyTorch's CPU-only build when its index answers: PyPI's default
  # Linux build carries ~4 GB of CUDA libraries.
  if [ "$TORCH_CHOSEN" = 0 ] && [ "$(uname -s)" = Linux ] \
     && [ ! -e /proc/driver/nvidia/version ] && ! nvidia-smi -L >/dev/null 2>&1; then
    if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" \
         "$TORCH_CPU_INDEX" 2>/dev/null; then
      index=(--index-url "$TORCH_CPU_INDEX")
      build="the CPU-only build (no NVIDIA GPU here)"
    else
      build="PyPI's default (CUDA) build: no NVIDIA GPU here, but $TORCH_CPU_INDEX does not answer"
    fi
  fi
  # shellcheck disable=SC2086  # TORCH_PACKAGES is a list of requirement specifiers
  step "installing $TORCH_PACKAGES, $build" "$PY" -m pip install $TORCH_PACKAGES ${index[@]+"${index[@]}"}
fi
step "installing the service, the client and the test tools (.[dev])" "$PY" -m pip install -e '.[dev]'
