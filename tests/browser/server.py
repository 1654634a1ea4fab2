"""A real API process for the browser tests: uvicorn running service.app:create_app on a free port."""

from __future__ import annotations

import os
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


def server_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the API process: its own store, a known API key, CPU inference, no bootstrap job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSA_")}
    env.update({"SSA_HOME": str(home), "SSA_API_KEY": API_KEY, "SSA_BOOTSTRAP": "false", "SSA_PROVIDER": "cpu",
                "SSA_INTRA_OP_THREADS": "1", "SSA_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)})
    if "SSA_REDIS_URL" in os.environ:
        env["SSA_REDIS_URL"] = os.environ["SSA_REDIS_URL"]
    env.update(extra or {})
    return env


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


@contextmanager
def running_api(home: Path, log: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start the API on a free port, yield its base URL once ready, stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=server_env(home, extra_env), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
