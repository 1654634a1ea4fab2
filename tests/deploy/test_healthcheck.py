"""docker/healthcheck.py against a real HTTP server and a real Celery worker on a private Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.composefile import REPO
from tests.deploy.conftest import RedisFactory, free_port, wait_until

SCRIPT = REPO / "docker/healthcheck.py"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=env, check=False)


def test_http_2xx_is_healthy(http_base: str) -> None:
    result = healthcheck("http", f"{http_base}/healthz")
    assert (result.returncode, result.stderr) == (0, "")


def test_http_error_status_is_unhealthy(http_base: str) -> None:
    result = healthcheck("http", f"{http_base}/readyz")
    assert result.returncode == 1
    assert "answered HTTP 503" in result.stderr


def test_http_closed_port_is_unhealthy() -> None:
    result = healthcheck("http", f"http://127.0.0.1:{free_port()}/healthz", "--timeout", "1")
    assert result.returncode == 1
    assert "unreachable" in result.stderr


def test_celery_app_spec_must_name_an_attribute() -> None:
    result = healthcheck("celery", "worker_without_attribute")
    assert result.returncode == 1
    assert "module:attribute" in result.stderr


def test_only_workers_of_this_host_count() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import healthcheck as module
    finally:
        sys.path.remove(str(SCRIPT.parent))
    replies = [{"celery@box-1": {"ok": "pong"}}, {"ssa@box-2": {"ok": "pong"}}]
    assert module.local_nodes(replies, "box-2") == ["ssa@box-2"]
    assert module.local_nodes(replies, "box-3") == []


APP = """
from celery import Celery
app = Celery("healthcheck_probe", broker={url!r})
app.conf.broker_connection_retry_on_startup = True
"""


def test_celery_worker_ping(redis_server: RedisFactory, tmp_path: Path) -> None:
    url = redis_server()
    (tmp_path / "probe_app.py").write_text(APP.format(url=url), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    idle = healthcheck("celery", "probe_app:app", "--timeout", "1", env=env)
    assert idle.returncode == 1 and "no Celery worker on" in idle.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "probe_app:app", "worker", "--pool", "solo", "--without-gossip",
         "--without-mingle", "-n", f"probe@{socket.gethostname()}", "--loglevel", "WARNING"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def healthy() -> bool:
            return healthcheck("celery", "probe_app:app", "--timeout", "1", env=env).returncode == 0

        assert wait_until(healthy, 45, interval=0.5), "the healthcheck never saw the running worker"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert healthcheck("celery", "probe_app:app", "--timeout", "1", env=env).returncode == 1
