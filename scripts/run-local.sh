#!/usr/bin/env bash
# `make run`: start a worker and the app on this machine, queue a demo job if there is no model
# yet, print where to look. Ctrl-C stops both (the worker checkpoints its job first).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export RUNS_DIR=${RUNS_DIR:-$PWD/runs}
export DATA_ROOT=${DATA_ROOT:-$PWD/data}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p "$RUNS_DIR/_logs" "$DATA_ROOT"

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
  MODE="embedded (no Redis: Celery filesystem queue under $RUNS_DIR/_broker)"
fi

pids=()
stop() {
  echo; echo "stopping (the worker checkpoints a running job and hands it back)..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

"$PY" -m celery -A worker.celery_app worker --queues train --concurrency 1 --loglevel INFO \
  >> "$RUNS_DIR/_logs/worker.log" 2>&1 &
pids+=($!)
"$PY" -m uvicorn app.main:app --host "$HOST" --port "$PORT" >> "$RUNS_DIR/_logs/app.log" 2>&1 &
pids+=($!)

URL="http://$HOST:$PORT"
for _ in $(seq 1 120); do
  if curl -fsS "$URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "the app did not start; see $RUNS_DIR/_logs/app.log" >&2; stop; fi
  sleep 0.5
done

if ! curl -fsS "$URL/readyz" >/dev/null 2>&1 && [ "$(curl -fsS "$URL/jobs" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')" = 0 ]; then
  echo "no model yet: queueing a demo job on synthetic faces (a few minutes on 2 CPU cores)..."
  curl -fsS -X POST "$URL/train" -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d "$(cat scripts/demo-job.json)" && echo
fi

cat <<MSG

  gallery   $URL/
  API docs  $URL/docs
  token     $API_TOKEN     (Authorization: Bearer ...)
  broker    $MODE
  logs      $RUNS_DIR/_logs/{worker,app}.log

Ctrl-C stops the worker and the app.
MSG
wait
