"""Liveness, readiness (a model loaded and warmed up) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import BatcherDep, BootstrapStatusDep, ManagerDep, MetricsDep
from service.schemas.models import Health, Readiness
from service.wiring import BootstrapStatus

log = logging.getLogger("ssa.service")
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive and answering."""
    return Health(status="ok")


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The same as /healthz, under the name text-embeddings-inference uses."""
    return await healthz()


def bootstrap_progress(hook: BootstrapStatus) -> dict[str, Any] | None:
    """Progress of the first-run training job (None when there is none, or the status cannot be read)."""
    try:
        return hook()
    except Exception:
        log.exception("the bootstrap status hook failed")
        return None


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}})
async def readyz(manager: ManagerDep, bootstrap_status: BootstrapStatusDep) -> JSONResponse:
    """200 once a model is loaded and its warm-up inference passed; 503 with the reason (and the progress of the
    bootstrap training job, when one is running) until then."""
    loaded = manager.current
    body = Readiness(
        ready=loaded is not None, reason=None if loaded else manager.status,
        model_id=loaded.info.model_id if loaded else None, model_version=loaded.info.version if loaded else None,
        provider=loaded.predictor.provider if loaded else None,
        bootstrap=None if loaded else bootstrap_progress(bootstrap_status))
    return JSONResponse(body.model_dump(), status_code=200 if loaded else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Prometheus metrics"}})
async def metrics(metrics: MetricsDep, batcher: BatcherDep) -> Response:
    """Prometheus metrics: request latency, batch sizes, queue depth, inference time, the active model."""
    # and, read from Redis by service.jobmetrics: the job queue's depth, jobs by status, ended jobs' run times
    metrics.queue_depth.set(batcher.depth)
    body = await asyncio.to_thread(metrics.render)  # the job metrics read Redis
    return Response(body, media_type=CONTENT_TYPE_LATEST)
