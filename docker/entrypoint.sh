#!/bin/sh
# Entrypoint of the ssa-service images (API, worker, Flower).
#  1. Checks that the artifact store ($SSA_HOME, a volume at /data) exists and is writable by this user, and
#     stops with a message that says how to fix it when it is not (a host folder mounted over /data keeps the
#     host's owner, and the images run as uid 10001).
#  2. On the GPU variant, puts the CUDA/cuDNN libraries that pip installed (site-packages/nvidia/*/lib) on
#     LD_LIBRARY_PATH so that ONNX Runtime's CUDA provider finds them.
#  3. Runs the command (CMD or the compose `command`) as PID 1, so signals reach it.
set -eu

check_home() {
    home="${SSA_HOME:-/data}"
    probe="$home/.write-test.$$"
    if mkdir -p "$home" 2>/dev/null && : >"$probe" 2>/dev/null; then
        rm -f "$probe"
        return 0
    fi
    echo "ssa: SSA_HOME=$home is not writable by uid $(id -u) (gid $(id -g))." >&2
    echo "ssa: use the named volume from docker-compose.yml, or give the mounted host folder to that user:" >&2
    echo "ssa:     sudo chown -R $(id -u):$(id -g) /path/on/host" >&2
    exit 78
}

add_nvidia_libs() {
    [ "${SSA_VARIANT:-}" = "gpu" ] || return 0
    libs=$(python - <<'PY'
import glob, os, sysconfig
root = os.path.join(sysconfig.get_paths()["purelib"], "nvidia")
print(":".join(sorted(glob.glob(os.path.join(root, "*", "lib")) + glob.glob(os.path.join(root, "*", "*", "lib")))))
PY
)
    if [ -n "$libs" ]; then
        export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
}

check_home
add_nvidia_libs
exec "$@"
