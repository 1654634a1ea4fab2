#!/usr/bin/env bash
# Makes `docker compose build` work on a host that cannot pull from Docker Hub. Does nothing where it can.
#
#   bash scripts/base-images.sh            # as a user who may run docker (root here)
#
# 1. Base images. For PYTHON_IMAGE (default python:3.11-slim-bookworm) and SSA_REDIS_IMAGE (default redis:7),
#    the names docker-compose.yml builds from and runs: when the image is already on this host, or
#    `docker pull` gets it, nothing is done. Otherwise a local stand-in is built under that same name, so that
#    compose needs no other setting: a Debian bookworm root made with debootstrap (imported once as
#    ssa-local/debian:bookworm), plus python3.11 (docker/base/python.Dockerfile) or redis-server 7.0
#    (docker/base/redis.Dockerfile). The host's CA bundle (SSA_CA_BUNDLE, default: pip's `cert` setting, else
#    /etc/ssl/certs/ca-certificates.crt) becomes the stand-in's system bundle, so that pip inside the builds
#    trusts a network that inspects TLS. Stand-ins carry the label org.ssa-service.stand-in; remove them with
#    `docker image rm python:3.11-slim-bookworm redis:7` once Docker Hub answers.
# 2. CPU torch for the worker image. When pip finds a CPU wheel of torch (`torch==SSA_TORCH_VERSION+cpu`,
#    default 2.13.0) without downloading from the PyTorch index (pip's find-links, as on the project's
#    machines), it is copied to docker/torch-wheels/ (git-ignored), which docker/Dockerfile.worker installs
#    from. Elsewhere the image build uses the PyTorch CPU index as before.
#
# Needs: docker; debootstrap (installed with apt-get when missing and this is root) only when a stand-in is
# built. DEBIAN_MIRROR (default http://deb.debian.org/debian) is the mirror debootstrap and apt use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
SSA_REDIS_IMAGE="${SSA_REDIS_IMAGE:-redis:7}"
DEBIAN_IMAGE="ssa-local/debian:bookworm"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SSA_TORCH_VERSION="${SSA_TORCH_VERSION:-2.13.0}"

log() { printf '[base-images] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The CA bundle the stand-ins trust: SSA_CA_BUNDLE, pip's configured cert, or Debian's system bundle.
ca_bundle() {
    local candidate
    for candidate in "${SSA_CA_BUNDLE:-}" "${PIP_CERT:-}" \
        "$(python3 -m pip config get global.cert 2>/dev/null || true)" /etc/ssl/certs/ca-certificates.crt; do
        if [ -n "$candidate" ] && [ -s "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    die "no CA bundle found: set SSA_CA_BUNDLE=/path/to/bundle.pem"
}

ensure_debian_root() {
    have_image "$DEBIAN_IMAGE" && return 0
    if ! command -v debootstrap >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            die "debootstrap is missing: sudo apt-get install debootstrap, then run this again"
        fi
        log "installing debootstrap (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                     --no-install-recommends debootstrap >/dev/null; } \
            || die "could not install debootstrap"
    fi
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/ssa-debootstrap.XXXXXX")"
    log "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (about a minute or two)"
    if ! debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        rm -rf "$dir"
        die "debootstrap failed (log above)"
    fi
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" \
        >"$dir/etc/apt/sources.list"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -c . | docker import - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$dir" "$dir.log"
    log "imported $DEBIAN_IMAGE"
}

# build_stand_in NAME DOCKERFILE: builds docker/base/DOCKERFILE as NAME, with the CA bundle as its context.
build_stand_in() {
    local name="$1" dockerfile="$ROOT/docker/base/$2" context
    ensure_debian_root
    context="$(mktemp -d "${TMPDIR:-/tmp}/ssa-base-context.XXXXXX")"
    cp "$(ca_bundle)" "$context/ca-certificates.crt"
    log "building the stand-in $name ($dockerfile)"
    # The classic builder: it needs no buildx plugin, and these two files need nothing newer.
    if ! DOCKER_BUILDKIT=0 docker build --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$name" -f "$dockerfile" \
        "$context" >"$context.log" 2>&1; then
        tail -n 30 "$context.log" >&2
        rm -rf "$context" "$context.log"
        die "building $name failed (log above)"
    fi
    rm -rf "$context" "$context.log"
}

# ensure_image NAME DOCKERFILE: nothing when NAME is here or can be pulled; else a stand-in.
ensure_image() {
    local name="$1" standin
    if have_image "$name"; then
        standin="$(docker image inspect -f '{{ index .Config.Labels "org.ssa-service.stand-in" }}' "$name")"
        log "$name: present${standin:+ (a local stand-in)}"
        return 0
    fi
    if docker pull -q "$name" >/dev/null 2>&1; then
        log "$name: pulled"
        return 0
    fi
    log "$name: cannot be pulled (no Docker Hub here); making a local stand-in"
    build_stand_in "$name" "$2"
}

stage_torch_wheel() {
    local dest="$ROOT/docker/torch-wheels" want="torch==$SSA_TORCH_VERSION+cpu"
    if compgen -G "$dest/torch-$SSA_TORCH_VERSION+cpu-*.whl" >/dev/null; then
        log "docker/torch-wheels: has torch $SSA_TORCH_VERSION+cpu"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || { log "no python3: the worker build uses the PyTorch CPU index"; return 0; }
    # --no-index: only wheels that are already on this host (pip's find-links); nothing is downloaded.
    if python3 -m pip download -q --no-deps --no-index "$want" -d "$dest" >/dev/null 2>&1; then
        log "docker/torch-wheels: copied the local $want wheel"
    else
        log "no local $want wheel: the worker build uses the PyTorch CPU index"
    fi
}

main() {
    command -v docker >/dev/null 2>&1 || die "docker is not installed"
    docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running? may this user use it?)"
    ensure_image "$PYTHON_IMAGE" python.Dockerfile
    ensure_image "$SSA_REDIS_IMAGE" redis.Dockerfile
    stage_torch_wheel
}

main "$@"
