"""FastAPI dependencies as Annotated aliases over the typed app state (service.wiring): settings, store, served
model, batcher, metrics, job store, job submitter, bootstrap status, download limiter (the API-key checks:
service.auth). The getters are `async def` on purpose: FastAPI runs plain `def` dependencies in a worker thread, a
thread hop per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from jobs.producer import JOBS_EXTRA_MISSING, jobs_installed
from jobs.store import JobStore
from service.errors import ApiError
from service.http.ratelimit import RateLimiter
from service.inference.batcher import MicroBatcher
from service.inference.manager import ModelManager
from service.inference.occlusion import OcclusionLane
from service.metrics import ServiceMetrics
from service.settings import Settings
from service.submissions.label import LabelSubmitter
from service.submissions.train import JobSubmitter
from service.submissions.uploads import UploadSlots
from service.wiring import AppState, BootstrapStatus, app_state
from ssa_core.runtime.artifacts import ArtifactStore


def state_of(request: Request) -> AppState:
    return app_state(request.app)


async def get_state(request: Request) -> AppState:
    return state_of(request)


async def get_app_settings(request: Request) -> Settings:
    return state_of(request).settings


async def get_store(request: Request) -> ArtifactStore:
    return state_of(request).store


async def get_manager(request: Request) -> ModelManager:
    return state_of(request).manager


async def get_batcher(request: Request) -> MicroBatcher:
    return state_of(request).batcher


async def get_occlusion(request: Request) -> OcclusionLane:
    return state_of(request).occlusion


async def get_metrics(request: Request) -> ServiceMetrics:
    return state_of(request).metrics


async def get_jobs(request: Request) -> JobStore:
    return state_of(request).jobs


def require_jobs_installed() -> None:
    """Submitting a job needs the `jobs` extra (Celery); a prediction-only install answers 503 saying so."""
    if not jobs_installed():
        raise ApiError(503, "jobs_unavailable", JOBS_EXTRA_MISSING)


async def get_submitter(request: Request) -> JobSubmitter:
    require_jobs_installed()
    return state_of(request).job_submitter


async def get_label_submitter(request: Request) -> LabelSubmitter:
    require_jobs_installed()
    return state_of(request).label_submitter


async def get_upload_slots(request: Request) -> UploadSlots:
    return state_of(request).upload_slots


async def get_bootstrap_status(request: Request) -> BootstrapStatus:
    return state_of(request).bootstrap_status


StateDep = Annotated[AppState, Depends(get_state)]  # everything at once: one dependency to solve per request
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
OcclusionDep = Annotated[OcclusionLane, Depends(get_occlusion)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
SubmitterDep = Annotated[JobSubmitter, Depends(get_submitter)]
LabelSubmitterDep = Annotated[LabelSubmitter, Depends(get_label_submitter)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
BootstrapStatusDep = Annotated[BootstrapStatus, Depends(get_bootstrap_status)]


async def get_download_limiter(request: Request) -> RateLimiter:
    return state_of(request).download_limiter


DownloadLimiterDep = Annotated[RateLimiter, Depends(get_download_limiter)]
