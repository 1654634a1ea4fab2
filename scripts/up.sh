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
# 5. Until Ctrl-C or SIGTERM: a worker or API that dies is started again (after 1 s, doubling up to 60 s
#    while it keeps dying within a minute of its start), each restart logged; the other one keeps running.
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
MAX_RESTART_DELAY=60   # seconds; the backoff between restarts of a process that keeps dying
STABLE_AFTER=60        # seconds; a process that ran this long before dying is restarted after 1 s again
# setsid puts the worker in a process group of its own, so that a dead worker's pool processes can be stopped
# with it before the next worker starts (without it the pool processes are left to the job lease).
SETSID="$(command -v setsid || true)"

# A key generated on the first run and reused, so that the console and curl calls keep working.
api_key() {
    local file="$VAR_DIR/api-key"
    if [ ! -s "$file" ]; then
        (umask 077 && "$SSA_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' >"$file")
    fi
    cat "$file"
}

stop_all() {
    trap - INT TERM HUP EXIT
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

# The logs are appended to, so that a restarted process's log keeps what its predecessor wrote last.
start_worker() {
    ssa_log "starting the worker (log: $LOG_DIR/worker.log)"
    if [ -n "$SETSID" ]; then
        "$SETSID" "$SSA_VENV/bin/ssa" worker >>"$LOG_DIR/worker.log" 2>&1 &
    else
        "$SSA_VENV/bin/ssa" worker >>"$LOG_DIR/worker.log" 2>&1 &
    fi
    WORKER_PID=$!
    WORKER_SINCE=$SECONDS
}

start_api() {
    ssa_log "starting the API on $HOST:$PORT (log: $LOG_DIR/api.log)"
    "$SSA_VENV/bin/ssa" serve --host "$HOST" --port "$PORT" >>"$LOG_DIR/api.log" 2>&1 &
    API_PID=$!
    API_SINCE=$SECONDS
}

start_services() {
    : >"$LOG_DIR/worker.log"
    : >"$LOG_DIR/api.log"
    start_worker
    start_api
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

# restart_delay SECONDS_RUN PREVIOUS_DELAY: 1 s after a run of STABLE_AFTER seconds or more, else twice the
# previous delay (at most MAX_RESTART_DELAY).
restart_delay() {
    local ran="$1" previous="$2"
    if [ "$ran" -ge "$STABLE_AFTER" ] || [ "$previous" -lt 1 ]; then
        echo 1
    elif [ $((previous * 2)) -gt "$MAX_RESTART_DELAY" ]; then
        echo "$MAX_RESTART_DELAY"
    else
        echo $((previous * 2))
    fi
}

# died NAME PID SINCE DELAY_VAR AT_VAR: when process PID (started at SINCE) has exited, log its status and the
# time of its restart (sets DELAY_VAR and AT_VAR) and succeed; fail while it runs.
died() {
    local name="$1" pid="$2" since="$3" delay_var="$4" at_var="$5" status=0 delay
    kill -0 "$pid" 2>/dev/null && return 1
    wait "$pid" 2>/dev/null || status=$?
    if [ "$name" = worker ] && [ -n "$SETSID" ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true  # its pool processes, if any outlived it
    fi
    delay="$(restart_delay $((SECONDS - since)) "${!delay_var}")"
    printf -v "$delay_var" '%s' "$delay"
    printf -v "$at_var" '%s' $((SECONDS + delay))
    ssa_log "the $name exited (status $status$([ "$status" -gt 128 ] && echo ", signal $((status - 128))")) \
after $((SECONDS - since)) s; restarting it in $delay s. Last lines of $LOG_DIR/$name.log:"
    tail -n 15 "$LOG_DIR/$name.log" >&2 || true
    return 0
}

# Until Ctrl-C or SIGTERM: report readiness once (polling /readyz every 15 s), and start the worker or the API
# again when it dies, with a growing delay while it keeps dying (see restart_delay); the other keeps running.
supervise() {
    # worker_delay and api_delay are read and set by died (through their names)
    # shellcheck disable=SC2034
    local ready=0 tick=0 worker_delay=0 api_delay=0 worker_at=0 api_at=0
    http_ok "$BASE_URL/readyz" && ready=1
    [ "$ready" = 1 ] || not_ready_note
    while true; do
        if [ -n "$WORKER_PID" ] && died worker "$WORKER_PID" "$WORKER_SINCE" worker_delay worker_at; then
            WORKER_PID=""
        fi
        if [ -z "$WORKER_PID" ] && [ "$SECONDS" -ge "$worker_at" ]; then
            start_worker
        fi
        if [ -n "$API_PID" ] && died api "$API_PID" "$API_SINCE" api_delay api_at; then
            API_PID=""
            ready=0
        fi
        if [ -z "$API_PID" ] && [ "$SECONDS" -ge "$api_at" ]; then
            start_api
        fi
        tick=$((tick + 1))
        if [ "$ready" = 0 ] && [ $((tick % 15)) = 0 ] && http_ok "$BASE_URL/readyz"; then
            ready=1
            ssa_log "ready: a model is serving at $BASE_URL/predict"
        fi
        sleep 1
    done
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
    trap 'exit 129' HUP
    ssa_ensure_redis "$VAR_DIR/redis" "$LOG_DIR/redis.log"
    start_services
    wait_healthy
    print_urls
    supervise
}

main "$@"
