#!/usr/bin/env bash
# Runs every check of the project: the test suite, ruff, mypy and the import contracts.
#
#   bash scripts/test.sh [extra pytest arguments]
#
# Sets up .venv like scripts/up.sh (skipped when nothing changed), installs Debian's chromium and
# chromium-driver for the browser tests when they are missing and apt-get can be used (browser tests
# skip themselves without them), and uses the Redis at SSA_REDIS_URL, starting a throwaway redis-server
# when none answers. Exits non-zero when any check fails; all checks run either way.
#
# Last, the compose end-to-end test (pytest -m compose: tests/deploy/test_compose_e2e.py, about 10-20 min on
# 2 cores): it installs/starts a Docker engine where it can (scripts/docker-engine.sh, as root) and skips, saying
# why, where it cannot. SSA_COMPOSE_E2E=0 leaves it out; SSA_COMPOSE_GPU=1 also builds the GPU images.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SSA_ROOT"

ensure_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        ssa_log "chromium/chromedriver missing and apt-get unusable here: browser tests will be skipped"
        return 0
    fi
    ssa_log "installing chromium and chromium-driver (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium chromium-driver >/dev/null; } \
        || ssa_log "could not install chromium: browser tests will be skipped"
}

FAILED=()

run_check() {
    local name="$1"
    shift
    ssa_log "== $name: $*"
    if "$@"; then
        ssa_log "== $name: passed"
    else
        ssa_log "== $name: FAILED (exit $?)"
        FAILED+=("$name")
    fi
}

cleanup() { ssa_stop_pids "$SSA_STARTED_REDIS_PID"; }

main() {
    ssa_ensure_venv
    ensure_browser
    trap cleanup EXIT
    export SSA_REDIS_URL
    ssa_ensure_redis "$(mktemp -d "${TMPDIR:-/tmp}/ssa-test-redis.XXXXXX")" "${TMPDIR:-/tmp}/ssa-test-redis.log"
    export PATH="$SSA_VENV/bin:$PATH"
    run_check pytest python -m pytest -q "$@"
    run_check ruff ruff check .
    run_check mypy mypy
    run_check import-linter lint-imports
    if [ "${SSA_COMPOSE_E2E:-1}" != 0 ]; then
        run_check compose-e2e python -m pytest -q -m compose tests/deploy/test_compose_e2e.py
    else
        ssa_log "== compose-e2e: left out (SSA_COMPOSE_E2E=0)"
    fi
    if [ "${#FAILED[@]}" -gt 0 ]; then
        ssa_die 1 "failed: ${FAILED[*]}"
    fi
    ssa_log "all checks passed"
}

main "$@"
