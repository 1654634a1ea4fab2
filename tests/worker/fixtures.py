"""Fixtures shared by tests/worker and tests/jobs (imported into both conftest modules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sentiment_train_file
from tests.worker.procs import RedisServer
from tests.worker.stack import JobStack


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (AOF on), so that no message or job leaks between tests."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sentiment_rows() -> list[dict[str, Any]]:
    """The first 200 real movie-sentiment training rows."""
    lines = sentiment_train_file().read_text(encoding="utf-8").splitlines()[:200]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="session")
def base_models(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SSA_ALLOWED_BASE_MODELS of the tests: the 2-layer MiniLM as `tiny`, and `broken`: a folder whose config.json
    is not JSON, so that every training attempt on it crashes."""
    broken = tmp_path_factory.mktemp("broken-encoder")
    (broken / "config.json").write_text("{ this is not json")
    return f"minilm,tiny={tiny_encoder_dir},broken={broken}"


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, base_models: str) -> Iterator[JobStack]:
    """Redis + store + API in-process; workers are started by the test (`stack.worker(name)`)."""
    job_stack = JobStack(tmp_path, redis_server, base_models)
    yield job_stack
    job_stack.close()
