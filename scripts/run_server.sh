#!/usr/bin/env bash
# `make run`: migrate, start what is missing (SecantusDB when MONGODB_URL is unset), serve on $PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
# VENV: the virtual environment to run from (the image has its own at /opt/venv).
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
[ -f .env ] && set -a && . ./.env && set +a

mkdir -p .data
CHILDREN=()
trap 'for pid in "${CHILDREN[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

# Run "$@" again whenever it exits (a worker that lost its broker, say) until this script stops.
supervise() {
  local child
  trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
  while true; do
    "$@" &
    child=$!
    wait "$child" && status=0 || status=$?
    echo "$(date -u +%FT%TZ) $1 exited with status ${status}; restarting in 2 s" >&2
    sleep 2
  done
}
if [ -z "${SECRET_KEY:-}" ]; then
  case "${HOST:-127.0.0.1}" in
    127.0.0.1 | localhost | ::1) ;;
    *)
      # Development mode signs sessions and tokens with a key anyone can read in this repository.
      echo "Refusing to serve on ${HOST} without a SECRET_KEY: set it (see .env.example) or bind to 127.0.0.1." >&2
      exit 2
      ;;
  esac
  export CHAT_DEV_MODE=true
  echo "No SECRET_KEY: running in local development mode (do not expose this server)."
fi

if [ -z "${MONGODB_URL:-}" ]; then
  # Embedded default: a SecantusDB process on a data folder, stopped with the server.
  MONGO_PORT="${EMBEDDED_MONGODB_PORT:-27018}"
  export MONGODB_URL="mongodb://127.0.0.1:${MONGO_PORT}"
  if ! "$PY" -c "import pymongo,sys; pymongo.MongoClient('$MONGODB_URL', serverSelectionTimeoutMS=500).admin.command('ping')" 2>/dev/null; then
    echo "starting SecantusDB on port ${MONGO_PORT} (data in .data/secantus)"
    # --sync-on-commit: a commit is on disk before it is acknowledged (else a kill -9 loses the last acks).
    "$PY" -m secantus --port "$MONGO_PORT" --storage-path .data/secantus --sync-on-commit --log-level WARNING >.data/secantus.log 2>&1 &
    CHILDREN+=($!)
    for _ in $(seq 1 60); do
      "$PY" -c "import pymongo; pymongo.MongoClient('$MONGODB_URL', serverSelectionTimeoutMS=500).admin.command('ping')" 2>/dev/null && break
      sleep 0.5
    done
  fi
fi

if [ "${RUN_MIGRATIONS:-true}" = "true" ]; then
  "$PY" manage.py migrate --noinput
  "$PY" manage.py ensure_indexes
fi
"$PY" manage.py collectstatic --noinput -v0
if [ -n "${REDIS_URL:-}" ] && [ "${CELERY_TASK_ALWAYS_EAGER:-false}" != "true" ] && [ "${RUN_WORKER:-true}" = "true" ]; then
  # Search indexing and notices run after delivery in a Celery worker (with the periodic sweep).
  # RUN_WORKER=false when workers run elsewhere (docker-compose's `worker` service).
  echo "starting a Celery worker, restarted whenever it exits (log in .data/celery.log)"
  supervise "$VENV/bin/celery" -A chatproject worker -B -l WARNING --concurrency 1 -s .data/celerybeat-schedule \
    >>.data/celery.log 2>&1 &
  CHILDREN+=($!)
fi
PORT="${PORT:-8000}"
# Uvicorn's own frame limit (16 MiB by default) at twice the project's: a frame up to that gets the
# server's `frame_too_large` error frame and the socket stays open; a bigger one is cut (1009).
WS_MAX_SIZE=$(( ${WS_MAX_FRAME_BYTES:-65536} * 2 ))
echo "serving on http://127.0.0.1:${PORT}"
# With nothing else started here (a container: the stores and the worker run elsewhere) the
# server replaces this shell, so a stop signal reaches it and it shuts down gracefully.
RUN=()
[ "${#CHILDREN[@]}" -eq 0 ] && RUN=(exec)
# ASGI_SERVER: see the README's Deployment section for what each is measured to do better.
case "${ASGI_SERVER:-uvicorn}" in
  # X-Forwarded-For / -Proto are read only from FORWARDED_ALLOW_IPS (addresses or networks, comma-
  # separated): the reverse proxy's address in a deployment, never "*" (any client could then claim
  # any address, and the per-address limits would count nothing).
  uvicorn) "${RUN[@]}" "$VENV/bin/uvicorn" --host "${HOST:-127.0.0.1}" --port "$PORT" --ws websockets-sansio --ws-max-size "$WS_MAX_SIZE" \
    --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
    --lifespan off --no-access-log chatproject.asgi:application ;;
  # Daphne's --proxy-headers would take X-Forwarded-For from any peer (it has no list of trusted
  # proxies), so it is not passed: behind a proxy every client is the proxy's address. Daphne is for
  # running without a proxy; a proxied deployment serves with Uvicorn (README, Deployment).
  daphne)
    if [ -n "${FORWARDED_ALLOW_IPS:-}" ]; then
      echo "FORWARDED_ALLOW_IPS is ignored with ASGI_SERVER=daphne: it reads no proxy headers" >&2
    fi
    "${RUN[@]}" "$VENV/bin/daphne" -b "${HOST:-127.0.0.1}" -p "$PORT" chatproject.asgi:application ;;
  *) echo "ASGI_SERVER must be uvicorn or daphne" >&2; exit 2 ;;
esac
