#!/usr/bin/env bash
# System tools the tests start for themselves: redis-server (a private one per test module, never
# the machine's shared Redis) and Debian's Chromium for the gallery tests (driven by Playwright,
# no browser download). Installed with apt-get when missing and we are root.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
chromium=""
for bin in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$bin" ] && [ -x "$bin" ]; then chromium=$bin; break; fi
done
[ -n "$chromium" ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} for the tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing for the tests: ${missing[*]}. Install them (sudo apt-get install ${missing[*]})," >&2
echo "or set CHROMIUM=/path/to/chrome if you have another Chromium." >&2
exit 1
