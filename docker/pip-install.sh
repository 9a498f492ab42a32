#!/bin/sh
# `pip install` for the image build (docker/Dockerfile).
#
#   pip-install --torch torch==2.14.1 torchvision==0.29.1   # from TORCH_INDEX_URL when set, else PyPI
#   pip-install --deps-only '.[service]'                     # what pyproject.toml asks for, not the project
#
# --deps-only needs only pyproject.toml in the current folder: the packages it lists get empty
# stand-ins for the time of the install, and the project itself is uninstalled after, so that this
# layer changes only when pyproject.toml does.
#
# BUILD_INPUTS_URL, when set, names an HTTP folder (docker/smoke.sh serves one from the host) with
#   ca-certificates.crt  a CA bundle, for a network whose proxy inspects TLS;
#   wheels/              wheel files: with --torch, PyTorch and its dependencies come from there only.
# Both are optional and only read during this command: nothing from that folder stays in the image.
set -eu

mode=""
case "${1:-}" in
  --torch | --deps-only) mode=$1; shift ;;
esac

# fetch URL FILE: exit 0 with the body in FILE, 1 when the server answers 404.
fetch() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.error, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1], timeout=30).read()
except urllib.error.HTTPError as err:
    if err.code == 404:
        sys.exit(1)
    raise
with open(sys.argv[2], "wb") as out:
    out.write(body)
PY
}

ca=$(mktemp)
trap 'rm -f "$ca"' EXIT
from_wheels=""
if [ -n "${BUILD_INPUTS_URL:-}" ]; then
  url=${BUILD_INPUTS_URL%/}
  if fetch "$url/ca-certificates.crt" "$ca"; then
    export PIP_CERT="$ca"
  fi
  if [ "$mode" = --torch ] && fetch "$url/wheels/" /dev/null; then
    hostport=${url#*://}
    hostport=${hostport%%/*}
    set -- --no-index --find-links "$url/wheels/" --trusted-host "$hostport" "$@"
    from_wheels=1
  fi
fi
if [ "$mode" = --torch ] && [ -z "$from_wheels" ] && [ -n "${TORCH_INDEX_URL:-}" ]; then
  set -- --index-url "$TORCH_INDEX_URL" "$@"
fi

if [ "$mode" != --deps-only ]; then
  pip install "$@"
  exit
fi

# Stand-ins for the project's readme and packages (from pyproject.toml), made here and removed
# below; the first line printed is the project's name, the others what was made.
made=$(python3 - <<'PY'
import os
try:
    import tomllib
except ImportError:  # Python 3.10: the parser pip carries
    from pip._vendor import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    meta = tomllib.load(f)
print(meta["project"]["name"])
readme = meta["project"].get("readme", "")
readme = readme if isinstance(readme, str) else readme.get("file", "")
if readme and not os.path.exists(readme):
    open(readme, "w").close()
    print(readme)
packages = meta.get("tool", {}).get("setuptools", {}).get("packages", [])
for package in packages if isinstance(packages, list) else []:
    parts = package.split(".")
    new = next((parts[:i] for i in range(1, len(parts) + 1) if not os.path.exists("/".join(parts[:i]))), None)
    if new:
        os.makedirs("/".join(parts))
        open("/".join(parts + ["__init__.py"]), "w").close()
        print("/".join(new))
PY
)
name=$(echo "$made" | head -1)
pip install "$@"
pip uninstall -y -q "$name"
echo "$made" | tail -n +2 | xargs -r rm -rf
rm -rf build ./*.egg-info
