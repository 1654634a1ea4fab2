"""Fixtures of the browser tests: Debian's chromium driven by Playwright, against a real API process.

Screenshots land in test-artifacts/browser/ (gitignored); the ones named predict.png, jobs.png and models.png are
the console's documentation screenshots: copy them to docs/screenshots/ when the console's look changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssa_core.runtime.artifacts import ArtifactStore
from tests.browser.server import REPO, running_api, shared_settings
from tests.worker.procs import RedisServer, WorkerProcess, worker_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}
SECOND_MODEL = "tiny-second"


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """A headless Chromium (the Debian package; never a Playwright-downloaded build)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium binary at {CHROMIUM} (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def console_home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """An artifact store with two models: the tiny hybrid (active) and a copy of it under another id."""
    home = tmp_path_factory.mktemp("console-home")
    store = ArtifactStore(home)
    active = store.import_model(tiny_model_dir)
    store.import_model(tiny_model_dir, SECOND_MODEL)
    store.set_active_model(active)
    return home


@pytest.fixture(scope="package")
def console_settings(console_home: Path, tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                     ) -> Iterator[dict[str, str]]:
    """Settings shared by the API and the worker: the store above, a private Redis, the base model `tiny`."""
    redis = RedisServer(tmp_path_factory.mktemp("console-redis")).start()
    try:
        yield shared_settings(console_home, redis.url, f"tiny={tiny_encoder_dir}")
    finally:
        redis.stop()


@pytest.fixture(scope="package")
def api_url(console_settings: dict[str, str], chromium: Any) -> Iterator[str]:
    """Base URL of a real API process (uvicorn) serving the console and the store above."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_api(console_settings, ARTIFACTS / "api.log") as base:
        yield base


@pytest.fixture(scope="package")
def training_worker(console_settings: dict[str, str], api_url: str) -> Iterator[WorkerProcess]:
    """A real `ssa worker` taking the API's training jobs (its log: test-artifacts/browser/worker-console-*.log)."""
    env = worker_env(Path(console_settings["SSA_HOME"]), console_settings["SSA_REDIS_URL"],
                     console_settings["SSA_ALLOWED_BASE_MODELS"])
    worker = WorkerProcess("console", env, ARTIFACTS).start()
    yield worker
    worker.stop()


class ConsolePage:
    """A browser page plus every JavaScript error and failed console message it produced."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def js_errors(self) -> list[str]:
        """JavaScript errors; Chromium's "Failed to load resource" lines for expected 4xx answers are not errors."""
        return [e for e in self.errors if "Failed to load resource" not in e]


@pytest.fixture
def console(chromium: Any, api_url: str, request: pytest.FixtureRequest) -> Iterator[ConsolePage]:
    """A fresh browser context at desktop size; a screenshot of the final state is kept per test."""
    context = chromium.new_context(viewport=DESKTOP, base_url=api_url)
    context.set_default_timeout(15_000)
    page = ConsolePage(context.new_page())
    yield page
    page.screenshot(f"test-{request.node.name}")
    context.close()
