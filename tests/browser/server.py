"""The API as a real process for the browser tests: uvicorn running service.app:create_app on a free port.
(Redis and the training worker come from tests.worker.procs, the job tests' helpers.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
API_KEY = "browser-test-key"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any SSA_* variable, plus `settings` and the repository on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSA_")}
    env.update({"PYTHONPATH": str(REPO), **settings})
    return env


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process group started for `proc` (a worker's pool children included), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    """Wait until GET /readyz answers 200; raise with the server log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API was not ready within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


def shared_settings(home: Path, redis_url: str, base_models: str) -> dict[str, str]:
    """SSA_* settings the API and the worker must agree on."""
    return {"SSA_HOME": str(home), "SSA_REDIS_URL": redis_url, "SSA_ALLOWED_BASE_MODELS": base_models}


@contextmanager
def running_api(settings: dict[str, str], log: Path) -> Iterator[str]:
    """Start the API on a free port (known API key, CPU inference, no bootstrap job); yield its URL once ready."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    env = process_env({**settings, "SSA_API_KEY": API_KEY, "SSA_BOOTSTRAP": "false", "SSA_PROVIDER": "cpu",
                       "SSA_INTRA_OP_THREADS": "1", "SSA_LOG_LEVEL": "warning"})
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        yield base
    finally:
        stop(proc)
