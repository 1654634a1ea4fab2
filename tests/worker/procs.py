"""Real processes for the job tests: a private redis-server (AOF on) and `ssa worker` processes, each in its own
process group so that a test can SIGKILL a whole worker (main process and pool child)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1,
             on_timeout: Callable[[], str] | None = None) -> T:
    """Poll `check` until it returns something truthy; fail with `what` (and `on_timeout()`'s text) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    extra = on_timeout() if on_timeout else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}")


class RedisServer:
    """redis-server on a free port with its data (AOF, fsync always) in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def start(self) -> RedisServer:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
               "--logfile", str(self.directory / "redis.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._pings, 10, f"redis-server on port {self.port}")
        return self

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown save, only what the AOF already holds survives."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


def worker_env(home: Path, redis_url: str, base_models: str, **extra: str) -> dict[str, str]:
    """Environment of a test worker: its store and Redis, short lease / visibility / retry times, CPU, 1 thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSA_")}
    env.update({
        "SSA_HOME": str(home), "SSA_REDIS_URL": redis_url, "SSA_ALLOWED_BASE_MODELS": base_models,
        "SSA_VISIBILITY_TIMEOUT_S": "6", "SSA_LEASE_TTL_S": "3", "SSA_RETRY_DELAY_S": "0.5",
        "SSA_MAX_ATTEMPTS": "3", "SSA_REAPER_INTERVAL_S": "1", "SSA_TASK_SOFT_TIME_LIMIT_S": "300",
        "SSA_TASK_TIME_LIMIT_S": "360",
        "SSA_TRAIN_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class WorkerProcess:
    """`ssa worker` (through the ssa.commands entry point) in its own session / process group."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.env = name, env
        self.log_path = log_dir / f"worker-{name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def start(self, wait: bool = True) -> WorkerProcess:
        cmd = [sys.executable, "-m", "ssa_core.cli.main", "worker", f"--hostname={self.name}@%h", "--loglevel=INFO"]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if wait:
            self.start_wait()
        return self

    def start_wait(self) -> None:
        wait_for(self._ready, 90, f"worker {self.name} to be ready", every=0.2, on_timeout=self.log_tail)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 6000) -> str:
        return f"--- worker {self.name} log ---\n{self.log()[-chars:]}"

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and its pool child, like a machine losing power."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def queue_length(client: redis.Redis, queue: str = "ssa-train") -> int:
    return int(client.llen(queue))


def unacked_count(client: redis.Redis) -> int:
    return int(client.hlen("unacked"))


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()
