"""Liveness, readiness (a model loaded and warmed up) and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import BatcherDep, ManagerDep, MetricsDep
from service.schemas import Health, Readiness

log = logging.getLogger("ssa.service")
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive and answering."""
    return Health(status="ok")


def bootstrap_progress(request: Request) -> dict[str, Any] | None:
    """Progress of the first-run training job, from the hook the jobs module may set on app.state."""
    hook: Callable[[], dict[str, Any] | None] | None = getattr(request.app.state, "bootstrap_status", None)
    if hook is None:
        return None
    try:
        return hook()
    except Exception:
        log.exception("the bootstrap status hook failed")
        return None


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}})
async def readyz(request: Request, manager: ManagerDep) -> JSONResponse:
    """200 once a model is loaded and its warm-up inference passed; 503 with the reason (and the progress of the
    bootstrap training job, when one is running) until then."""
    loaded = manager.current
    body = Readiness(
        ready=loaded is not None, reason=None if loaded else manager.status,
        model_id=loaded.info.model_id if loaded else None, model_version=loaded.info.version if loaded else None,
        provider=loaded.predictor.provider if loaded else None,
        bootstrap=None if loaded else bootstrap_progress(request))
    return JSONResponse(body.model_dump(), status_code=200 if loaded else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Prometheus metrics"}})
async def metrics(metrics: MetricsDep, batcher: BatcherDep) -> Response:
    """Prometheus metrics: request latency, batch sizes, queue depth, inference time, the active model."""
    metrics.queue_depth.set(batcher.depth)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
