"""The FastAPI application factory: the wired state (service.wiring), routes, error handlers, limits, docs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from service.buildinfo import package_version
from service.errormap import install_error_handlers
from service.http.bodylimit import BodySizeLimit
from service.http.fastpath import FastPath
from service.http.headmethod import HeadAsGet
from service.http.jsonbody import JsonBodyCheck
from service.http.latency import LatencyMiddleware
from service.http.securityheaders import SecurityHeaders
from service.openapi.docs import mount_docs
from service.openapi.document import custom_openapi
from service.routes import health, info, jobs, labels, models, predict, tokenize
from service.settings import Settings, get_settings
from service.wiring import app_state, build_state

log = logging.getLogger("ssa.service")
STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Inference and labeling service for text classifiers trained with Self-Supervised Attention (SSA).

**Auth.** Write endpoints (deploy, jobs) need the `X-API-Key` header (the server's `SSA_API_KEY`); so do the reads
that `SSA_PRIVATE_READS` lists (weak labels and model downloads by default), and every read when
`SSA_READS_REQUIRE_KEY=true`. Errors always have the shape
`{"error": {"type", "message", "detail"}}`.
"""

TAGS = [
    {"name": "predict", "description": "Labels, scores and per-token SSA attention; the model's tokens (/tokenize)."},
    {"name": "models", "description": "Models in the store: list, inspect, deploy (hot swap), download."},
    {"name": "jobs", "description": "Training jobs run by the worker."},
    {"name": "health", "description": "Liveness, readiness, Prometheus metrics, and what is served (/info)."},
]


def body_limit(settings: Settings) -> Callable[[str], int]:
    """Dataset uploads (under /jobs) may be larger than other bodies."""
    return lambda path: settings.max_upload_bytes if path.startswith("/jobs") else settings.max_body_bytes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the batcher, publish/deploy --model if given, follow active.json, submit the bootstrap job if needed."""
    state = app_state(app)
    settings, store = state.settings, state.store
    state.batcher.start()
    if settings.model is not None:
        model_id = await asyncio.to_thread(store.import_model, settings.model)
        await asyncio.to_thread(store.set_active_model, model_id)
        log.info("model folder %s published as %s and made active", settings.model, model_id)
    state.manager.start()
    await state.bootstrap.on_startup(app)
    try:
        yield
    finally:
        await state.manager.stop()
        await state.batcher.stop()
        state.occlusion.shutdown()
        await asyncio.to_thread(state.upload_checks.shutdown)


class ServiceApp(FastAPI):
    """FastAPI with ordinary POST /predict requests answered ahead of its middleware stack (service.http.fastpath)."""

    def build_middleware_stack(self) -> ASGIApp:
        return FastPath(self, super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new API instance; `settings` defaults to the environment's (SSA_*)."""
    settings = settings or get_settings()
    app = ServiceApp(title="SSA service", version=package_version(), description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    state = app.state = build_state(settings)
    install_error_handlers(app)
    for router in (predict.build_router(settings), tokenize.build_router(settings), models.router, labels.router,
                   jobs.router, health.router, info.router):
        app.include_router(router)
    mount_console(app)
    mount_docs(app)
    # the last added runs first: headers on every response, HEAD as GET, the body cap before the JSON checks
    app.add_middleware(JsonBodyCheck)
    app.add_middleware(BodySizeLimit, limit_for=body_limit(settings))
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(LatencyMiddleware, metrics=state.metrics)
    app.openapi = lambda: custom_openapi(app)  # type: ignore[method-assign]
    return app


def mount_console(app: FastAPI) -> None:
    """Serve the web console (service/static: index.html at /, assets under /static) when it is there."""
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(index)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
