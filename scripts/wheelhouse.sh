#!/usr/bin/env bash
# `make wheelhouse`: the service's packages as wheels for a GPU machine without network
# (Python 3.12, manylinux x86_64), at the versions installed here, with their dependencies.
# benchmarks/gpu_check.sh installs them there when fastapi is missing; bring wheelhouse/ along
# (docs/deploy.md, "On a GPU machine without network").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=${DEST:-wheelhouse}
# What such a machine lacks (it has torch, numpy, Pillow, httpx, prometheus-client, onnx, ...).
NAMES="fastapi uvicorn pydantic pydantic-settings celery redis fastapi-offline isal"
pins=$("$PY" - $NAMES <<'PY'
import sys
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))
PY
)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PY" -m pip freeze --exclude-editable | grep -v -e '^-e' -e '^torch' -e '^nvidia' -e '^triton' > "$constraints" || true
mkdir -p "$DEST"
echo "downloading wheels for Python 3.12 manylinux x86_64 into $DEST/: $pins"
"$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -c "$constraints" -d "$DEST" $pins \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST/"
