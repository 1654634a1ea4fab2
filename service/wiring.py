"""The one place that wires the API: settings, artifact store, metrics, model manager, micro-batcher, job store,
job submitters and first-run bootstrap, held in a typed `AppState` (FastAPI's `app.state`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State

from jobs.producer import QUEUE, enqueue_labeling, enqueue_training, producer_app
from jobs.store import JobStore
from service.http.ratelimit import RateLimiter
from service.inference.batcher import BatchStats, MicroBatcher
from service.inference.manager import ModelManager
from service.inference.occlusion import OcclusionLane
from service.jobmetrics import JobMetrics
from service.metrics import ServiceMetrics
from service.settings import Settings
from service.submissions.bootstrap import Bootstrap
from service.submissions.label import LabelSubmitter
from service.submissions.train import JobSubmitter
from service.submissions.uploadcheck import UploadCheckPool
from service.submissions.uploads import UploadSlots
from ssa_core.runtime.artifacts import ArtifactStore

API_REDIS_RETRIES = 3  # about 0.7 s of retrying before a 503
BootstrapStatus = Callable[[], dict[str, Any] | None]


class AppState(State):
    """What request handlers and the lifespan use; built once per app by `build_state`."""

    settings: Settings
    store: ArtifactStore
    metrics: ServiceMetrics
    manager: ModelManager
    batcher: MicroBatcher
    occlusion: OcclusionLane  # the occlusion explainer's own bounded lane, apart from the batcher
    download_limiter: RateLimiter  # model downloads per key (or client address) per minute
    jobs: JobStore
    job_submitter: JobSubmitter
    upload_slots: UploadSlots  # dataset-upload submissions at once (SSA_MAX_PARALLEL_UPLOADS)
    upload_checks: UploadCheckPool  # validates uploads in other processes, one per upload slot (stopped by lifespan)
    label_submitter: LabelSubmitter
    bootstrap: Bootstrap
    bootstrap_status: BootstrapStatus  # what /readyz shows of the first-run job (tests may replace it)


def make_batcher(settings: Settings, metrics: ServiceMetrics) -> MicroBatcher:
    def on_batch(stats: BatchStats) -> None:
        metrics.batch_size.observe(stats.inputs)
        metrics.batch_requests.observe(stats.requests)
        metrics.inference_seconds.observe(stats.seconds)

    return MicroBatcher(max_batch_size=settings.max_batch_size, max_wait_s=settings.max_wait_ms / 1000,
                        queue_size=settings.queue_size, bucket_size=settings.bucket_size,
                        workers=settings.inference_workers, on_batch=on_batch,
                        on_queue=metrics.queue_depth.set)


def build_state(settings: Settings) -> AppState:
    """Every long-lived object of one API instance. Nothing connects yet (Redis is reached on first use)."""
    state = AppState()
    state.settings, state.metrics = settings, ServiceMetrics()
    state.store = ArtifactStore(settings.home)
    state.manager = ModelManager(state.store, settings, state.metrics)
    state.batcher = make_batcher(settings, state.metrics)
    state.occlusion = OcclusionLane(settings.occlusion_concurrency)
    state.download_limiter = RateLimiter(settings.downloads_per_minute)
    state.upload_slots = UploadSlots(settings.max_parallel_uploads)
    state.upload_checks = UploadCheckPool(settings.max_parallel_uploads)
    state.jobs = JobStore.from_url(settings.redis_url, retries=API_REDIS_RETRIES)
    state.metrics.registry.register(JobMetrics(state.jobs, QUEUE))
    redis_url = settings.redis_url
    state.job_submitter = JobSubmitter(settings, state.store, state.jobs,
                                       lambda job_id: enqueue_training(producer_app(redis_url), job_id),
                                       state.upload_checks)
    state.label_submitter = LabelSubmitter(settings, state.store, state.jobs,
                                           lambda job_id: enqueue_labeling(producer_app(redis_url), job_id),
                                           state.upload_checks)
    state.bootstrap = Bootstrap(settings, state.store, state.jobs, state.job_submitter)
    state.bootstrap_status = state.bootstrap.status
    return state


def app_state(app: FastAPI) -> AppState:
    """The typed state of an app made by `service.app.create_app`."""
    state = app.state
    if not isinstance(state, AppState):
        raise TypeError("this app was not built by service.app.create_app (its state is not an AppState)")
    return state
