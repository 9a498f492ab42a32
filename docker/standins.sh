#!/usr/bin/env bash
# Local stand-ins for the public images the stack starts from, for a machine that reaches a
# Debian mirror but not Docker Hub. docker/smoke.sh builds them only when a pull fails.
#
#   docker/standins.sh python   # dcgan-standin/python:3.11-slim-bookworm: Debian bookworm's python3
#                               # (3.11) + venv + CA certificates, debootstrapped and imported
#   docker/standins.sh redis    # dcgan-standin/redis:7: Debian bookworm's redis-server on top of it
#
#   docker/standins.sh mirror   # prints the Debian mirror the two would use
#
# Each prints the image name on its last line. Needs root for debootstrap (installed with apt-get
# when missing). The mirror is the one this host's apt already uses for bookworm (its
# sources.list, sources.list.d/*.list and *.sources; APT_ETC=/etc/apt), so a host whose apt points
# at a local mirror gets that one; http://deb.debian.org/debian when none names bookworm.
# DEBIAN_MIRROR overrides it.
set -euo pipefail

PYTHON_STANDIN=dcgan-standin/python:3.11-slim-bookworm
REDIS_STANDIN=dcgan-standin/redis:7
SUITE=bookworm
DEFAULT_MIRROR=http://deb.debian.org/debian

log() { echo "[standins] $*" >&2; }

# The first enabled `deb` source of this host's apt that serves $SUITE: one-line entries
# (deb [options] URI SUITE COMPONENTS...) and deb822 paragraphs (Types/URIs/Suites/Enabled).
host_mirror() {
  local etc=${APT_ETC:-/etc/apt} f found
  for f in "$etc/sources.list" "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        found=$(awk -v suite="$SUITE" 'BEGIN { RS = "" } {
            types = uris = suites = ""; enabled = "yes"; n = split($0, lines, "\n")
            for (i = 1; i <= n; i++) {
              line = lines[i]; if (line ~ /^[ \t]*#/) continue
              key = tolower(line); sub(/:.*/, "", key); value = line; sub(/^[^:]*:[ \t]*/, "", value)
              if (key == "types") types = value; else if (key == "uris") uris = value
              else if (key == "suites") suites = value; else if (key == "enabled") enabled = tolower(value)
            }
            if (enabled == "no" || (" " types " ") !~ / deb /) next
            if ((" " suites " ") !~ (" " suite " ")) next
            split(uris, u, /[ \t]+/); print u[1]; exit
          }' "$f") ;;
      *)
        found=$(awk -v suite="$SUITE" '$1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit }
          }' "$f") ;;
    esac
    if [ -n "$found" ]; then
      echo "${found%/}"
      return
    fi
  done
}

MIRROR=${DEBIAN_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-$DEFAULT_MIRROR}

python_standin() {
  if docker image inspect "$PYTHON_STANDIN" >/dev/null 2>&1; then
    echo "$PYTHON_STANDIN"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    log "debootstrap needs root; run as root, or make python:3.11-slim-bookworm pullable"
    exit 1
  fi
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    local out
    out=$(apt-get update -q 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap 2>&1) \
      || { echo "$out" | tail -5 >&2; exit 1; }
  fi
  local root
  root=$(mktemp -d /tmp/dcgan-standin.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  log "debootstrap bookworm (python3, python3-venv, ca-certificates) from $MIRROR"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$MIRROR" > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # Leave out what the official slim image leaves out too: apt's caches, docs, man pages.
  tar -C "$root" --exclude=./usr/share/doc --exclude=./usr/share/man \
      --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' -c . \
    | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$PYTHON_STANDIN" >/dev/null
  echo "$PYTHON_STANDIN"
}

redis_standin() {
  if docker image inspect "$REDIS_STANDIN" >/dev/null 2>&1; then
    echo "$REDIS_STANDIN"
    return
  fi
  local base
  base=$(python_standin | tail -1)
  log "building $REDIS_STANDIN from Debian's redis-server"
  # Like the official image: /data is the working directory, the server runs as `redis`, and
  # protected mode is off (the official build turns it off; the Compose network is the fence).
  local out
  out=$(docker build --force-rm -t "$REDIS_STANDIN" - 2>&1 <<EOF
FROM $base
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data \\
 && printf '#!/bin/sh\nif [ "\$1" = redis-server ]; then shift; exec redis-server --protected-mode no "\$@"; fi\nexec "\$@"\n' \\
      > /usr/local/bin/docker-entrypoint.sh && chmod +x /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
  ) || { echo "$out" | tail -20 >&2; exit 1; }
  echo "$REDIS_STANDIN"
}

case "${1:-}" in
  python) python_standin ;;
  redis) redis_standin ;;
  mirror) echo "$MIRROR" ;;
  *) echo "usage: $0 python|redis|mirror" >&2; exit 2 ;;
esac
