"""Fixtures of the deployment tests: free ports and private, real redis-server instances."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.deploy.composefile import REPO

RedisFactory = Callable[..., str]
# Lines the compose end-to-end test measured (times, image sizes), printed in pytest's summary.
COMPOSE_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COMPOSE_REPORT:
        terminalreporter.section("compose end-to-end: measured")
        for line in COMPOSE_REPORT:
            terminalreporter.write_line(line)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisFactory]:
    """Starts redis-server with docker/redis.conf (plus overrides) on a free loopback port; returns its URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    started: list[subprocess.Popen[bytes]] = []

    def start(*overrides: str) -> str:
        port = free_port()
        data = tmp_path / f"redis-{port}"
        data.mkdir()
        args = ["redis-server", str(REPO / "docker/redis.conf"), "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(data), "--logfile", str(data / "redis.log"), *overrides]
        started.append(subprocess.Popen(args))
        url = f"redis://127.0.0.1:{port}/0"
        assert wait_until(lambda: redis_answers(url), 15), (data / "redis.log").read_text()
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=15)
