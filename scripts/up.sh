#!/usr/bin/env bash
# Runs ssa-service on this machine without Docker: API + training worker (+ Redis if needed).
#
#   bash scripts/up.sh          then open the printed URL; Ctrl-C stops everything this script started.
#
# 1. Creates .venv and installs the project (CPU build of torch when there is no NVIDIA GPU); skipped
#    when pyproject.toml has not changed since the last install.
# 2. Uses the Redis at SSA_REDIS_URL, or starts redis-server (append-only file in var/redis/).
# 3. Starts `ssa worker` and `ssa serve` in the background, logs in var/logs/, waits for /healthz.
# 4. Waits for /readyz: on a fresh store the default model is first trained from the bundled sample.
#
# Environment (optional): SSA_HOST (default 127.0.0.1), SSA_PORT (8000), SSA_VAR_DIR (var: logs, Redis
# data, api-key), SSA_HOME (var/ssa), SSA_REDIS_URL, SSA_API_KEY (default: a key generated once and kept in
# var/api-key), SSA_SKIP_INSTALL=1 (use .venv as it is), and the other SSA_* settings of
# docs/ARCHITECTURE.md, which the API and the worker read themselves.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SSA_ROOT"

HOST="${SSA_HOST:-127.0.0.1}"
PORT="${SSA_PORT:-8000}"
VAR_DIR="${SSA_VAR_DIR:-$SSA_ROOT/var}"
LOG_DIR="$VAR_DIR/logs"
API_PID=""
WORKER_PID=""

# A key generated on the first run and reused, so that the console and curl calls keep working.
api_key() {
    local file="$VAR_DIR/api-key"
    if [ ! -s "$file" ]; then
        (umask 077 && "$SSA_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' >"$file")
    fi
    cat "$file"
}

stop_all() {
    trap - INT TERM EXIT
    ssa_log "stopping"
    ssa_stop_pids "$API_PID" "$WORKER_PID"
    ssa_stop_pids "$SSA_STARTED_REDIS_PID"
}

http_ok() { "$SSA_VENV/bin/python" "$SSA_ROOT/docker/healthcheck.py" http "$1" --timeout 2 2>/dev/null; }

# Fails (after showing the log) when the process died.
alive() {
    local pid="$1" name="$2"
    kill -0 "$pid" 2>/dev/null && return 0
    ssa_log "$name exited; last lines of $LOG_DIR/$name.log:"
    tail -n 30 "$LOG_DIR/$name.log" >&2 || true
    return 1
}

start_services() {
    ssa_log "starting the worker (log: $LOG_DIR/worker.log)"
    "$SSA_VENV/bin/ssa" worker >"$LOG_DIR/worker.log" 2>&1 &
    WORKER_PID=$!
    ssa_log "starting the API on $HOST:$PORT (log: $LOG_DIR/api.log)"
    "$SSA_VENV/bin/ssa" serve --host "$HOST" --port "$PORT" >"$LOG_DIR/api.log" 2>&1 &
    API_PID=$!
}

wait_healthy() {
    local deadline=$((SECONDS + 120))
    until http_ok "$BASE_URL/healthz"; do
        alive "$API_PID" api || exit 1
        [ "$SECONDS" -lt "$deadline" ] || ssa_die 1 "the API did not answer /healthz within 120 s; see $LOG_DIR/api.log"
        sleep 1
    done
}

print_urls() {
    cat >&2 <<EOF

  ssa-service is running.
    console:   $BASE_URL/
    API docs:  $BASE_URL/docs
    health:    $BASE_URL/healthz   ready: $BASE_URL/readyz
    API key:   $SSA_API_KEY   (header X-API-Key; kept in $VAR_DIR/api-key)
    logs:      $LOG_DIR/{api,worker}.log      store: $SSA_HOME
  Ctrl-C stops the API, the worker$([ -n "$SSA_STARTED_REDIS_PID" ] && echo " and Redis").

EOF
}

not_ready_note() {
    if [ "${SSA_BOOTSTRAP:-true}" = false ]; then
        ssa_log "no model is serving yet (SSA_BOOTSTRAP=false): deploy one with POST /models/{id}/deploy"
    else
        ssa_log "no model is serving yet: on a fresh store the default model is being trained from the bundled \
sample (a few minutes on CPU; progress in $LOG_DIR/worker.log and GET /jobs)"
    fi
}

# Until Ctrl-C: report readiness once (polling /readyz every 15 s), and stop everything if the API or the
# worker dies.
supervise() {
    local ready=0 tick=0
    http_ok "$BASE_URL/readyz" && ready=1
    [ "$ready" = 1 ] || not_ready_note
    while alive "$API_PID" api && alive "$WORKER_PID" worker; do
        tick=$((tick + 1))
        if [ "$ready" = 0 ] && [ $((tick % 5)) = 0 ] && http_ok "$BASE_URL/readyz"; then
            ready=1
            ssa_log "ready: a model is serving at $BASE_URL/predict"
        fi
        sleep 3
    done
    return 1
}

main() {
    ssa_ensure_venv
    mkdir -p "$LOG_DIR"
    export SSA_HOME="${SSA_HOME:-$VAR_DIR/ssa}" SSA_REDIS_URL
    SSA_API_KEY="${SSA_API_KEY:-$(api_key)}"
    export SSA_API_KEY
    BASE_URL="http://$HOST:$PORT"
    [ "$HOST" = "0.0.0.0" ] && BASE_URL="http://127.0.0.1:$PORT"
    http_ok "$BASE_URL/healthz" && ssa_die 2 "something already answers on $BASE_URL; set SSA_PORT to another port"
    trap stop_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ssa_ensure_redis "$VAR_DIR/redis" "$LOG_DIR/redis.log"
    start_services
    wait_healthy
    print_urls
    supervise || exit 1
}

main "$@"
