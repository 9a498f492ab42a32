#!/usr/bin/env bash
# `make run`: start a worker and the app on this machine, queue a demo job if there is no model
# yet, and end with where to look. Ctrl-C stops both (the worker checkpoints its job first) and
# says what it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export RUNS_DIR=${RUNS_DIR:-$PWD/runs}
export DATA_ROOT=${DATA_ROOT:-$PWD/data}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
LOGS=$RUNS_DIR/_logs
mkdir -p "$LOGS" "$DATA_ROOT"

# A token that stays the same across restarts unless you set API_TOKEN yourself.
if [ -z "${API_TOKEN:-}" ]; then
  if [ ! -s "$RUNS_DIR/.api_token" ]; then
    (umask 077; "$PY" -c "import secrets; print(secrets.token_urlsafe(24))" > "$RUNS_DIR/.api_token")
  fi
  API_TOKEN=$(cat "$RUNS_DIR/.api_token")
fi
export API_TOKEN

if [ -n "${REDIS_URL:-}" ]; then
  MODE="Redis at ${REDIS_URL%%@*}... (REDIS_URL)"
else
  MODE="embedded (no Redis: a queue of files under $RUNS_DIR/_broker)"
fi
URL="http://$HOST:$PORT"

# The running jobs as "ID at epoch E/N" lines, from the app (empty when it does not answer).
running_jobs() {
  curl -fsS --max-time 3 "$URL/jobs" 2>/dev/null | "$PY" -c '
import json, sys
for j in json.load(sys.stdin)["jobs"]:
    if j["state"] in ("running", "queued"):
        print("%s (%s, epoch %s/%s)" % (j["job_id"], j["state"], j["epoch"], j["epochs"]))' 2>/dev/null || true
}

worker=""
app=""
stop() {
  trap '' INT TERM
  echo
  local before after
  before=$(running_jobs)
  if [ -n "$worker" ] && kill -0 "$worker" 2>/dev/null; then
    echo "stopping the worker (a job in training is checkpointed within a batch and queued again)..."
    kill -TERM "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
  fi
  after=$(running_jobs)
  if [ -n "$app" ] && kill -0 "$app" 2>/dev/null; then
    kill -TERM "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
  fi
  echo "stopped the worker and the app."
  if [ -n "$before" ]; then
    echo "jobs not finished, now waiting for the next \`make run\`:"
    sed 's/^/  /' <<< "${after:-$before}"
  fi
  echo "logs: $LOGS/worker.log, $LOGS/app.log"
  exit "${1:-0}"
}
trap stop INT TERM

echo "starting the worker and the app (logs in $LOGS/)"
# Each in a process group of its own: Ctrl-C reaches this script alone, which then stops the
# worker before the app, so that the app can still say what happened to the running job.
set -m
"$PY" -m celery -A worker.celery_app worker --queues train --concurrency 1 --loglevel INFO \
  >> "$LOGS/worker.log" 2>&1 &
worker=$!
"$PY" -m uvicorn app.main:app --host "$HOST" --port "$PORT" >> "$LOGS/app.log" 2>&1 &
app=$!

for _ in $(seq 1 120); do
  if curl -fsS "$URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$app" 2>/dev/null; then
    echo "the app did not start; the end of $LOGS/app.log:" >&2
    tail -n 15 "$LOGS/app.log" >&2
    stop 1
  fi
  sleep 0.5
done

if ! curl -fsS "$URL/readyz" >/dev/null 2>&1 \
   && [ "$(curl -fsS "$URL/jobs" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')" = 0 ]; then
  job=$(curl -fsS -X POST "$URL/train" -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
          -d "$(cat scripts/demo-job.json)" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  echo "no model yet: queued the demo job $job (1,024 synthetic faces, the fast preset, 48 epochs)"
fi

cat <<MSG

  gallery   $URL/
  API docs  $URL/docs
  token     $API_TOKEN     (Authorization: Bearer ...; also in $RUNS_DIR/.api_token)
  broker    $MODE
  logs      $LOGS/worker.log, $LOGS/app.log, and .venv/install.log for the installation

Ctrl-C stops the worker and the app; a job in training goes on at the next \`make run\`.
MSG

# Either process ending by itself is news: say which, and stop the other.
set +e
wait -n "$worker" "$app"
if ! kill -0 "$worker" 2>/dev/null; then
  echo "the worker stopped by itself; the end of $LOGS/worker.log:" >&2
  tail -n 15 "$LOGS/worker.log" >&2
else
  echo "the app stopped by itself; the end of $LOGS/app.log:" >&2
  tail -n 15 "$LOGS/app.log" >&2
fi
stop 1
