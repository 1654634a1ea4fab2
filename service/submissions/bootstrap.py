"""First start: with an empty store, train and deploy a default model on the shipped sentiment sample, through the
real job queue (a worker must be running). The Idempotency-Key makes it one job however often the API restarts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

import ssa_core
from jobs.producer import JOBS_EXTRA_MISSING, jobs_installed
from jobs.spec import ALWAYS, DEFAULT_BASE_MODEL, TrainJobSpec
from jobs.store import JobStore
from service.errors import ApiError, ServiceError
from service.settings import Settings
from service.submissions.train import JobSubmitter
from service.submissions.uploads import Upload, stage_upload, staging_folder
from ssa_core.runtime.artifacts import ArtifactStore

log = logging.getLogger("ssa.service")
BOOTSTRAP_KEY = "bootstrap-default-model"
BOOTSTRAP_MODEL_ID = "sentiment-minilm"
SAMPLE_DIR = Path(ssa_core.__file__).resolve().parent / "samples" / "sentiment"


def bootstrap_config(settings: Settings) -> TrainJobSpec:
    """The default model's job: hybrid SSA on the allowed base model (minilm when allowed), deployed at once;
    SSA_BOOTSTRAP_JOB replaces any of its settings but deploy and model_id."""
    names = list(settings.base_models)
    base = DEFAULT_BASE_MODEL if DEFAULT_BASE_MODEL in names or not names else names[0]
    chosen = {"method": "hybrid", "base_model": base, **(settings.bootstrap_job or {}),
              "deploy": ALWAYS, "model_id": BOOTSTRAP_MODEL_ID}
    return TrainJobSpec(**chosen)


class Bootstrap:
    """Submits the bootstrap job when needed; `status()` is what /readyz shows while no model is loaded."""

    def __init__(self, settings: Settings, store: ArtifactStore, jobs: JobStore, submitter: JobSubmitter,
                 sample_dir: Path = SAMPLE_DIR) -> None:
        self.settings, self.store, self.jobs, self.submitter = settings, store, jobs, submitter
        self.sample_dir = sample_dir
        self.state = "pending"
        self.job_id: str | None = None
        self.error: str | None = None

    def ensure(self) -> str | None:
        """Submit the bootstrap job unless bootstrapping is off or a model exists; the job id, or None."""
        if not self.settings.bootstrap:
            self.state = "disabled"
            return None
        if self.store.active_model_id() is not None or self.store.list_models():
            self.state = "not_needed"
            return None
        if not jobs_installed():
            self.state, self.error = "error", f"no model to serve, and {JOBS_EXTRA_MISSING}; give one with --model"
            log.error(self.error)
            return None
        with staging_folder(self.store) as folder:
            train, dev = (self._stage(name, folder) for name in ("train", "dev"))
            done = self.submitter.submit(bootstrap_config(self.settings), train, dev, idempotency_key=BOOTSTRAP_KEY)
        self.job_id, self.state = done.job_id, "submitted"
        log.info("no model yet: bootstrap job %s trains %s on the shipped sample (%s)", done.job_id,
                 BOOTSTRAP_MODEL_ID, "new" if done.created else "submitted earlier")
        return done.job_id

    def _stage(self, name: str, folder: Path) -> Upload:
        with (self.sample_dir / f"{name}.jsonl").open("rb") as sample:
            return stage_upload(name, f"{name}.jsonl", sample, self.settings.max_upload_bytes, folder)

    async def on_startup(self, app: FastAPI) -> None:
        """Startup hook: never blocks or breaks the API start (Redis down: logged, shown in the status)."""
        try:
            await asyncio.to_thread(self.ensure)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ApiError | ServiceError) else f"{type(exc).__name__}: {exc}"
            self.state, self.error = "error", f"could not submit the bootstrap job: {message}"
            log.error(self.error)

    def status(self) -> dict[str, Any] | None:
        """{"state", "job_id", "status", "stage", "progress", "eta_s", "error"}; None when there is nothing to show."""
        if self.job_id is None:
            return None if self.state in ("disabled", "not_needed") else {"state": self.state, "error": self.error}
        job = self.jobs.get(self.job_id)
        if job is None:
            return {"state": self.state, "job_id": self.job_id, "error": "the bootstrap job is gone from Redis"}
        return {"state": self.state, "job_id": job.id, "model_id": job.model_id, "status": job.status,
                "stage": job.stage, "progress": job.progress, "eta_s": job.eta_s, "error": job.error}
