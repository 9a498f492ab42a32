#!/usr/bin/env bash
# `make docker-smoke`: build the image and prove the Compose stack end to end, on the CPU of any
# machine with a Docker daemon. Not part of `make test`: it builds a multi-GB image.
#
#   1. the image (docker/Dockerfile), from the public base images, or from local stand-ins
#      (docker/standins.sh) where Docker Hub cannot be reached;
#   2. Redis + one worker + the app with docker-compose.cpu.yml, the app on a free port; waits
#      for the app's /healthz, /readyz answering 503 (no model yet) and a healthy worker;
#   3. a small synthetic job through POST /train, watched to `succeeded`;
#   4. GET /generate?seed=42&n=64 is a valid 786x786 PNG;
#   5. a second job: `compose stop` sends the worker SIGTERM mid-training, the job is handed back
#      with a checkpoint; after `compose start` it finishes without redoing what was done before
#      the stop (the files written before the stop are untouched);
#   6. every file in the runs volume belongs to the container user;
#   7. removes every container, volume, network and image it created.
# The last line is the summary, with timings and the image size.
#
# Environment:
#   BASE_IMAGE, REDIS_IMAGE  the images to start from (python:3.11-slim-bookworm, redis:7-alpine);
#                            the defaults are replaced by stand-ins when they cannot be pulled
#   TORCH_SOURCE             where the image's PyTorch comes from: auto (default: the first that
#                            works of the next three), cpu-index (PyTorch's CPU-only index,
#                            TORCH_CPU_INDEX), host-wheels (the wheel files this host's pip would
#                            install from its own disk), pypi (the Dockerfile's default)
#   TORCH_PACKAGES           the Dockerfile's ARG (its default when unset)
#   KEEP_BASE_IMAGES=1       keep the base images it pulled or built, for the next run
# Cleanup also removes untagged images made during the run (the layers of a build stopped
# half-way), so on a daemon that others build on at the same time it could take theirs too.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$SECONDS
PROJECT=dcgan-smoke-$$
IMAGE=dcgan-faces:smoke-$$
TMP=$(mktemp -d /tmp/dcgan-smoke.XXXXXX)
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
REDIS_IMAGE=${REDIS_IMAGE:-redis:7-alpine}
TORCH_SOURCE=${TORCH_SOURCE:-auto}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH_PKGS=${TORCH_PACKAGES:-$(sed -n 's/^ARG TORCH_PACKAGES="\(.*\)"$/\1/p' docker/Dockerfile)}
SMALL_JOB='{"dataset": "synthetic", "synthetic_images": 256, "ngf": 16, "ndf": 16, "batch_size": 32,
            "epochs": 4, "g_every": 1, "snapshot_epochs": [1, 2, 3, 4], "swd_images": 0}'
# Long enough to be stopped in the middle: the stop comes once epoch 2 has begun.
LONG_JOB='{"dataset": "synthetic", "synthetic_images": 256, "ngf": 16, "ndf": 16, "batch_size": 32,
           "epochs": 6, "g_every": 1, "snapshot_epochs": [1, 2, 3, 4, 5, 6], "swd_images": 0}'

STEP=setup
SUMMARY=()          # parts of the summary line
CREATED_IMAGES=()   # images this run made: removed at the end
SERVER_PID=""
BASES_LISTED=""
COMPOSE=()
TOKEN=""
PORT=""

log() { printf '[smoke %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
fail() { log "FAIL ($STEP): $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$1" "$(now)"; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }
# new_untagged: untagged images without children made since this run started: the last layer of
# a build stopped half-way (removing it removes the untagged layers under it).
new_untagged() {
  [ -f "$TMP/images-before" ] || return 0
  docker images -q --no-trunc --filter dangling=true | sort -u | comm -13 "$TMP/images-before" -
}

dc() {
  DCGAN_IMAGE=$IMAGE REDIS_IMAGE=$REDIS_RUN_IMAGE API_TOKEN=$TOKEN PORT=$PORT DATA_DIR=$TMP/data \
    "${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml -f docker-compose.cpu.yml "$@"
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
    sleep 1
  done
}

cleanup() {
  local rc=$? t img left
  trap - EXIT
  set +e
  t=$(now)
  if [ "$rc" != 0 ] && [ -n "$PORT" ]; then
    log "last lines of the stack's logs:"
    dc logs --no-color --tail 25 2>&1 | sed 's/^/    /' >&2
  fi
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "$PORT" ] && dc down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
  if [ -n "$BASES_LISTED" ] && [ "${KEEP_BASE_IMAGES:-}" != 1 ]; then
    for img in "${CANDIDATES[@]}"; do
      [[ " ${PRESENT[*]-} " == *" $img "* ]] || CREATED_IMAGES+=("$img")
    done
  fi
  # A build stopped half-way leaves untagged images, and its step's container may still run.
  for c in $(docker ps -a -q --no-trunc); do
    new_untagged | grep -qx "$(docker inspect -f '{{.Image}}' "$c")" && docker rm -f "$c" >/dev/null 2>&1
  done
  for img in "${CREATED_IMAGES[@]}"; do
    docker rmi -f "$img" >/dev/null 2>&1
  done
  new_untagged | xargs -r docker rmi -f >/dev/null 2>&1
  left=$(( $(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
         + $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
         + $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
         + $(new_untagged | wc -l) ))
  for img in "${CREATED_IMAGES[@]}"; do
    exists "$img" && left=$((left + 1))
  done
  rm -rf "$TMP"
  SUMMARY+=("cleanup $(since "$t") s, $left left behind")
  local line
  line=$(printf ' | %s' "${SUMMARY[@]}")
  if [ "$rc" = 0 ] && [ "$left" = 0 ]; then
    echo "docker-smoke: PASS in $((SECONDS - START)) s$line"
  else
    echo "docker-smoke: FAIL at $STEP after $((SECONDS - START)) s$line"
    [ "$rc" = 0 ] && rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- tools ----------------------------------------------------------------------------------------
STEP=tools
docker info >/dev/null 2>&1 || fail "no Docker daemon answers (start dockerd, or set DOCKER_HOST)"
for tool in python3 curl; do
  command -v $tool >/dev/null || fail "$tool is needed on this machine"
done
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log "no Docker Compose here: installing Debian's docker-compose"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose; } > "$TMP/apt.log" 2>&1 \
    || { tail -5 "$TMP/apt.log" >&2; fail "apt-get install docker-compose failed"; }
  COMPOSE=(docker-compose)
else
  fail "Docker Compose is needed (the compose plugin of docker, or docker-compose)"
fi
BUILDKIT=0
docker buildx version >/dev/null 2>&1 && BUILDKIT=1
log "docker $(docker version -f '{{.Server.Version}}'), $("${COMPOSE[@]}" version 2>/dev/null | head -1),"\
" builder: $([ $BUILDKIT = 1 ] && echo BuildKit || echo classic)"
docker images -a -q --no-trunc | sort -u > "$TMP/images-before"

# -- base images: pulled, or stand-ins ------------------------------------------------------------
STEP="base images"
t=$(now)
PY_STANDIN=dcgan-standin/python:3.11-slim-bookworm
REDIS_STANDIN=dcgan-standin/redis:7
CANDIDATES=("$BASE_IMAGE" "$REDIS_IMAGE" "$PY_STANDIN" "$REDIS_STANDIN")
PRESENT=()
for img in "${CANDIDATES[@]}"; do exists "$img" && PRESENT+=("$img"); done
BASES_LISTED=1   # from here on, cleanup removes the candidates that were not present
# pick IMAGE DEFAULT KIND: IMAGE if present or pullable, else KIND's stand-in when IMAGE is DEFAULT.
pick() {
  if exists "$1" || timeout 300 docker pull -q "$1" >/dev/null 2>&1; then
    echo "$1"
  elif [ "$1" = "$2" ]; then
    log "cannot pull $1: using a local stand-in (docker/standins.sh $3)"
    bash docker/standins.sh "$3" | tail -1
  else
    return 1
  fi
}
BASE_RUN_IMAGE=$(pick "$BASE_IMAGE" python:3.11-slim-bookworm python) || fail "cannot pull $BASE_IMAGE"
REDIS_RUN_IMAGE=$(pick "$REDIS_IMAGE" redis:7-alpine redis) || fail "cannot pull $REDIS_IMAGE"
log "base $BASE_RUN_IMAGE, redis $REDIS_RUN_IMAGE"
SUMMARY+=("bases $BASE_RUN_IMAGE, $REDIS_RUN_IMAGE ($(since "$t") s)")

# -- where torch comes from -----------------------------------------------------------------------
STEP="torch source"
mkdir -p "$TMP/inputs"
# This host's CA bundle, for a network whose proxy inspects TLS; read only during the build.
for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -s "$ca" ]; then cp "$ca" "$TMP/inputs/ca-certificates.crt"; break; fi
done
reachable() { python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" "$1" 2>/dev/null; }

# stage_host_wheels: put the wheels this host's pip would install for TORCH_PKGS under
# inputs/wheels (hard links to its local files, downloads for the rest); fails when the image's
# Python or machine differ from the host's, or when none of the wheels are on this disk.
stage_host_wheels() {
  local here there
  here=$(python3 -c 'import platform, sys; print(sys.version_info[:2], platform.machine())')
  there=$(docker run --rm "$BASE_RUN_IMAGE" python3 -c 'import platform, sys; print(sys.version_info[:2], platform.machine())')
  [ "$here" = "$there" ] || { log "host wheels: host Python $here, image $there"; return 1; }
  python3 -m pip install --dry-run --quiet --ignore-installed --report "$TMP/plan.json" \
    --target "$TMP/plan" $TORCH_PKGS >/dev/null 2>&1 || return 1
  mkdir -p "$TMP/inputs/wheels"
  python3 - "$TMP/plan.json" > "$TMP/plan.txt" <<'PY'
import json, sys, urllib.parse
for item in json.load(open(sys.argv[1]))["install"]:
    url = item["download_info"]["url"]
    local = url.startswith("file://")
    print("file" if local else "url", urllib.parse.unquote(url[7:]) if local else url)
PY
  grep -q '^file ' "$TMP/plan.txt" || { log "host wheels: none on this disk"; return 1; }
  local kind where urls=()
  while read -r kind where; do
    if [ "$kind" = file ]; then
      ln "$where" "$TMP/inputs/wheels/" 2>/dev/null || cp "$where" "$TMP/inputs/wheels/"
    else
      urls+=("$where")
    fi
  done < "$TMP/plan.txt"
  if [ ${#urls[@]} -gt 0 ]; then
    python3 -m pip download --quiet --no-deps --dest "$TMP/inputs/wheels" "${urls[@]}" >/dev/null || return 1
  fi
  log "host wheels: $(grep -c '^file ' "$TMP/plan.txt") from this disk, ${#urls[@]} downloaded"
}

TORCH_INDEX_URL=""
case "$TORCH_SOURCE" in
  auto | cpu-index | host-wheels | pypi) ;;
  *) fail "TORCH_SOURCE=$TORCH_SOURCE: use auto, cpu-index, host-wheels or pypi" ;;
esac
if [[ $TORCH_SOURCE == auto || $TORCH_SOURCE == cpu-index ]] && reachable "$TORCH_CPU_INDEX/torch/"; then
  TORCH_INDEX_URL=$TORCH_CPU_INDEX
  TORCH_FROM="PyTorch's CPU index"
elif [ "$TORCH_SOURCE" = cpu-index ]; then
  fail "$TORCH_CPU_INDEX cannot be reached"
elif [[ $TORCH_SOURCE == auto || $TORCH_SOURCE == host-wheels ]] && stage_host_wheels; then
  TORCH_FROM="this host's wheel files"
elif [ "$TORCH_SOURCE" = host-wheels ]; then
  fail "no usable wheel files on this host"
else
  TORCH_FROM="PyPI"
fi
log "torch ($TORCH_PKGS) from $TORCH_FROM"

# -- build ----------------------------------------------------------------------------------------
STEP=build
# The build steps read inputs/ (CA bundle, wheels) over HTTP from the host, on the bridge's gateway.
GATEWAY=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
[ -n "$GATEWAY" ] || GATEWAY=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
python3 -m http.server 0 --bind "$GATEWAY" --directory "$TMP/inputs" > "$TMP/http.log" 2>&1 &
SERVER_PID=$!
wait_for 20 "the build inputs server" grep -q 'port [0-9]' "$TMP/http.log"
INPUTS_URL="http://$GATEWAY:$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$TMP/http.log" | head -1)/"
args=(-f docker/Dockerfile -t "$IMAGE" --build-arg "BASE_IMAGE=$BASE_RUN_IMAGE"
      --build-arg "BUILD_INPUTS_URL=$INPUTS_URL" --build-arg "TORCH_PACKAGES=$TORCH_PKGS")
[ -n "$TORCH_INDEX_URL" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
[ $BUILDKIT = 0 ] && args+=(--force-rm)
log "docker build (log: $TMP/build.log)"
t=$(now)
CREATED_IMAGES+=("$IMAGE")
if ! docker build "${args[@]}" . > "$TMP/build.log" 2>&1; then
  tail -30 "$TMP/build.log" | sed 's/^/    /' >&2
  fail "docker build failed"
fi
BUILD_S=$(since "$t")
kill "$SERVER_PID" 2>/dev/null; SERVER_PID=""
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE" | python3 -c 'import sys; print(f"{int(sys.stdin.read()) / 1e9:.2f} GB")')
TORCH_VERSION=$(docker run --rm "$IMAGE" python -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")')
IMAGE_USER=$(docker run --rm "$IMAGE" sh -c 'echo "$(id -un) ($(id -u))"')
[[ $IMAGE_USER != "root "* ]] || fail "the image runs as root"
# The host's CA bundle went into no layer: no file of the image has its bytes.
if [ -s "$TMP/inputs/ca-certificates.crt" ]; then
  copies=$(docker run --rm -v "$TMP/inputs/ca-certificates.crt:/tmp/host-ca.crt:ro" -u 0 "$IMAGE" sh -c \
    'command -v cmp >/dev/null || { echo "(no cmp in the image to look with)"; exit 0; }
     find / -xdev -type f -size "$(wc -c < /tmp/host-ca.crt)c" ! -path /tmp/host-ca.crt -exec cmp -s {} /tmp/host-ca.crt \; -print')
  [ -z "$copies" ] || fail "the host's CA bundle is in the image: $copies"
fi
log "built $IMAGE in $BUILD_S s: $SIZE, $TORCH_VERSION, user $IMAGE_USER; its largest layers:"
docker history --format '{{.Size}}	{{.CreatedBy}}' "$IMAGE" | sort -h -r | head -4 | cut -c1-110 | sed 's/^/    /' >&2
SUMMARY+=("build $BUILD_S s, image $SIZE ($TORCH_VERSION from $TORCH_FROM, user $IMAGE_USER)")

# -- the stack --------------------------------------------------------------------------------------
STEP="stack up"
t=$(now)
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $TOKEN"
mkdir -p "$TMP/data"
dc up -d --no-build > "$TMP/up.log" 2>&1 || { sed 's/^/    /' "$TMP/up.log" >&2; fail "compose up failed"; }
wait_for 180 "the app's /healthz" curl -fsS "$URL/healthz"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code with no model yet (expected 503)"
WORKER=$(dc ps -q worker-cpu)
[ -n "$WORKER" ] || fail "no worker-cpu container"
worker_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$WORKER")" = healthy ]; }
wait_for 180 "a healthy worker" worker_healthy
UP_S=$(since "$t")
log "stack up on port $PORT in $UP_S s (app healthy, /readyz 503, worker healthy)"
SUMMARY+=("stack up $UP_S s")

# fields FIELD...: FIELD of the JSON object on stdin, space-separated ("-" for null or missing).
fields() {
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(*("-" if d.get(k) is None else d[k] for k in sys.argv[1:]))' "$@"
}
submit() {
  curl -fsS -X POST "$URL/train" -H "$AUTH" -H 'Content-Type: application/json' -d "$1" | fields job_id
}
job() { local id=$1; shift; curl -fsS "$URL/jobs/$id" | fields "$@"; }
# wait_job JOB SECONDS: wait for a final state, print it.
wait_job() {
  local deadline=$((SECONDS + $2)) state
  while :; do
    state=$(job "$1" state)
    case "$state" in succeeded | failed | cancelled) echo "$state"; return ;; esac
    [ $SECONDS -lt $deadline ] || fail "job $1 still $state after $2 s"
    sleep 1
  done
}

# -- a job through the API ------------------------------------------------------------------------
STEP="job 1"
t=$(now)
JOB1=$(submit "$SMALL_JOB")
state=$(wait_job "$JOB1" 900)
[ "$state" = succeeded ] || fail "job $JOB1 ended $state: $(job "$JOB1" error)"
JOB1_S=$(since "$t")
wait_for 30 "/readyz to answer 200 after the first model" curl -fsS "$URL/readyz"
log "job 1 ($JOB1) succeeded in $JOB1_S s; /readyz 200"
SUMMARY+=("job 1 (4 epochs) $JOB1_S s")

# -- /generate --------------------------------------------------------------------------------------
STEP=generate
t=$(now)
type=$(curl -fsS -o "$TMP/faces.png" -w '%{content_type}' "$URL/generate?seed=42&n=64")
GEN_MS=$(python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.0f}')" "$t" "$(now)")
# A PNG read with the standard library: signature, every chunk's CRC, and IDAT inflating to
# exactly height rows of (filter byte + width pixels).
dims=$(python3 - "$TMP/faces.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, size = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0], kind
    if kind == b"IHDR":
        w, h, depth, color = struct.unpack(">IIBB", body[:10])
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert kind == b"IEND", "truncated"
assert len(zlib.decompress(idat)) == h * (1 + w * channels * depth // 8), "bad image data"
print(f"{w}x{h}")
PY
) || fail "GET /generate did not return a valid PNG"
[[ $type == image/png* ]] || fail "GET /generate answered $type"
[ "$dims" = 786x786 ] || fail "GET /generate?seed=42&n=64 is $dims, expected 786x786"
log "/generate?seed=42&n=64: a $dims PNG in $GEN_MS ms"
SUMMARY+=("/generate 786x786 PNG $GEN_MS ms")

# -- SIGTERM mid-training, then resume ------------------------------------------------------------
STEP="hand-off"
JOB2=$(submit "$LONG_JOB")
deadline=$((SECONDS + 900))
while :; do
  read -r state epoch < <(job "$JOB2" state epoch)
  [ "$state" = running ] && [ "$epoch" -ge 2 ] && break
  case "$state" in succeeded | failed | cancelled) fail "job $JOB2 ended $state before it could be stopped" ;; esac
  [ $SECONDS -lt $deadline ] || fail "job $JOB2 never reached epoch 2"
  sleep 0.5
done
# The job's snapshots and checkpoints with their modification times: a resume must not rewrite
# what was written before the stop (a restart from scratch would rewrite epoch 1's snapshot).
job_files() {
  dc exec -T app sh -c "cd /runs/$JOB2 && find snapshots checkpoints -type f -printf '%p %T@\n' 2>/dev/null | sort"
}
job_files > "$TMP/before.txt"
t=$(now)
dc stop worker-cpu >/dev/null 2>&1
STOP_S=$(since "$t")
EXIT_CODE=$(docker inspect -f '{{.State.ExitCode}}' "$WORKER")
read -r state epoch checkpoint crashes < <(job "$JOB2" state epoch checkpoint crashes)
log "stopped the worker at epoch $epoch in $STOP_S s (exit code $EXIT_CODE): job $state, checkpoint $checkpoint"
[ "$state" = queued ] || fail "after SIGTERM the job is $state, expected queued (handed back)"
[ "$checkpoint" != - ] || fail "after SIGTERM the job has no checkpoint"
[ "$crashes" = 0 ] || fail "a SIGTERM counted as a crash ($crashes)"
[ "$EXIT_CODE" = 0 ] || fail "the worker exited with $EXIT_CODE on SIGTERM (killed after the grace period?)"
STOP_EPOCH=$epoch
t=$(now)
dc start worker-cpu >/dev/null 2>&1
state=$(wait_job "$JOB2" 900)
[ "$state" = succeeded ] || fail "job $JOB2 ended $state after the restart: $(job "$JOB2" error)"
RESUME_S=$(since "$t")
read -r attempts crashes epoch < <(job "$JOB2" attempts crashes epoch)
[ "$attempts" -ge 2 ] || fail "the job finished in $attempts attempt(s): it was not handed back"
[ "$crashes" = 0 ] || fail "the job counted $crashes crash(es)"
job_files > "$TMP/after.txt"
kept=$(grep -c . "$TMP/before.txt" || true)
[ "$kept" -gt 0 ] || fail "the job had written no snapshot or checkpoint before the stop"
# Paths in both lists whose time changed (an older checkpoint pruned since is not a rewrite).
rewritten=$(awk 'NR == FNR { t[$1] = $2; next } ($1 in t) && t[$1] != $2 { print $1 }' "$TMP/before.txt" "$TMP/after.txt")
[ -z "$rewritten" ] || fail "the resume rewrote files from before the stop: $rewritten"
log "restarted: job $JOB2 succeeded ($epoch epochs, $attempts attempts, 0 crashes) in $RESUME_S s;"\
" the $kept files from before the stop untouched"
SUMMARY+=("SIGTERM at epoch $STOP_EPOCH: stop $STOP_S s (exit 0), job handed back with $checkpoint, resumed to epoch $epoch in $RESUME_S s")

# -- ownership ------------------------------------------------------------------------------------
STEP=ownership
read -r files foreign < <(dc exec -T app sh -c \
  'echo "$(find /runs | wc -l) $(find /runs ! -user "$(id -u)" | wc -l)"')
[ "$foreign" = 0 ] || fail "$foreign of $files paths under /runs do not belong to the container user: \
$(dc exec -T app sh -c 'find /runs ! -user "$(id -u)" -printf "%u %p\n" | head -5')"
log "all $files paths in the runs volume belong to $IMAGE_USER"
SUMMARY+=("runs volume: $files paths, all owned by ${IMAGE_USER%% *}")

STEP=cleanup
