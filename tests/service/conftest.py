"""Service test helpers: a real uvicorn server in a thread (free port), stores holding the tiny trained model."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings
from ssa_core.runtime.artifacts import ArtifactStore

API_KEY = "test-key-ö"  # non-ASCII on purpose: the key comparison works on bytes
TEST_DEFAULTS: dict[str, Any] = {"bootstrap": False, "active_poll_s": 0.2, "api_key": API_KEY,
                                 "redis_url": "redis://127.0.0.1:6379/15"}


def make_settings(home: Path, **overrides: Any) -> Settings:
    return Settings(home=home, **{**TEST_DEFAULTS, **overrides})


def publish_copy(store: ArtifactStore, source: Path, model_id: str) -> str:
    """Publish a hard-linked copy of a model folder (fast; published folders are never modified)."""
    with store.staging() as stage:
        shutil.copytree(source, stage, dirs_exist_ok=True, copy_function=os.link)
        store.publish_model(stage, model_id)
    return model_id


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1 (free port) in a background thread; `url` once started."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)

    def wait_ready(self, model_id: str | None = None, timeout: float = 20) -> dict[str, Any]:
        """Poll /readyz until ready (and serving `model_id`, if given); returns the last body."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                body: dict[str, Any] = client.get("/readyz").json()
                if body["ready"] and (model_id is None or body["model_id"] == model_id):
                    return body
                if time.monotonic() > deadline:
                    raise AssertionError(f"not ready in {timeout} s: {body}")
                time.sleep(0.05)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home")


def two_model_store(root: Path, model_dir: Path) -> ArtifactStore:
    """A store holding the tiny model as 'tiny-a' (active) and 'tiny-b'."""
    store = ArtifactStore(root)
    publish_copy(store, model_dir, "tiny-a")
    publish_copy(store, model_dir, "tiny-b")
    store.set_active_model("tiny-a")
    return store


@pytest.fixture
def model_store(tmp_path: Path, tiny_model_dir: Path) -> ArtifactStore:
    return two_model_store(tmp_path / "home", tiny_model_dir)


@pytest.fixture
def live(model_store: ArtifactStore) -> Iterator[LiveServer]:
    """A running API serving tiny-a (ready), for tests that change its state."""
    with LiveServer(create_app(make_settings(model_store.root))) as server:
        server.wait_ready("tiny-a")
        yield server


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> ArtifactStore:
    return two_model_store(tmp_path_factory.mktemp("shared") / "home", tiny_model_dir)


@pytest.fixture(scope="session")
def shared_live(shared_store: ArtifactStore) -> Iterator[LiveServer]:
    """One running API serving tiny-a for the whole session: tests using it must not change its state."""
    with LiveServer(create_app(make_settings(shared_store.root))) as server:
        server.wait_ready("tiny-a")
        yield server


def run(coro: Any) -> Any:
    return asyncio.run(coro)
