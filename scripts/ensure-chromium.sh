#!/usr/bin/env bash
# The gallery tests drive Debian's Chromium through Playwright (no browser download).
set -euo pipefail
for bin in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$bin" ] && [ -x "$bin" ]; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the gallery tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "Chromium not found: install it (sudo apt-get install chromium) or set CHROMIUM=/path/to/chrome;" >&2
echo "the browser tests (pytest -m browser) need it." >&2
exit 1
