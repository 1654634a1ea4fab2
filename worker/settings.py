"""Worker settings from the environment (prefix `SSA_`): Redis, artifact store, and every reliability knob."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.spec import DEFAULT_BASE_MODEL


class WorkerSettings(BaseSettings):
    """What `ssa worker` and the Celery app read. Times are seconds, memory is KiB."""

    model_config = SettingsConfigDict(env_prefix="SSA_", extra="ignore")

    home: Path = Field(default=Path("./var/ssa"), description="Artifact store root, shared with the API.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL: broker, results, job store.")
    worker_concurrency: int = Field(default=1, ge=1, le=64, description="Training jobs one worker runs at once.")
    task_soft_time_limit_s: int = Field(default=7200, ge=1, description="A job past this fails with a clear error.")
    task_time_limit_s: int = Field(default=7500, ge=2, description="Hard limit: the job's process is killed.")
    visibility_timeout_s: int = Field(
        default=8000, ge=2, description="Unacknowledged jobs are re-delivered after this (broker and backend).")
    max_memory_per_child_kb: int = Field(
        default=6_000_000, ge=10_000, description="A worker process above this resident memory is replaced.")
    max_attempts: int = Field(default=3, ge=1, le=100, description="Deliveries of one job before it ends failed.")
    lease_ttl_s: int = Field(
        default=60, ge=2, le=3600, description="Lifetime of a running job's Redis lease (refreshed every third).")
    retry_delay_s: float = Field(
        default=30.0, ge=0.0, le=3600.0, description="Delay before a deferred or crashed job is tried again.")
    reaper_interval_s: float = Field(
        default=30.0, ge=0.0, le=3600.0,
        description="How often a worker re-queues jobs whose lease expired (a dead worker's); 0 turns it off.")
    job_retention_days: float = Field(
        default=0.0, ge=0.0, le=36_500.0, description="Ended jobs (succeeded, failed, cancelled) whose end lies "
        "this many days back are removed, record and folder, by the worker's housekeeping (every "
        "reaper_interval_s); 0 keeps them until DELETE /jobs/{id}. Published models are never removed.")
    allowed_base_models: str = Field(
        default=DEFAULT_BASE_MODEL, description="Comma list of base-model names jobs may use; name=path for folders.")
    label_threads: int = Field(
        default=1, ge=0, le=64, description="ONNX Runtime threads of a label shard's model (0: one per core).")
    train_probe_fanout_rows: int = Field(
        default=5000, ge=0, description="A training job whose training set has more rows than this runs each "
        "iteration's probing passes as shards over the workers (ssa.probe-shard); 0: always in its own process.")
    train_probe_shard_rows: int = Field(
        default=2000, ge=1, le=1_000_000, description="Sequences (originals or masked copies) per shard of a "
        "fanned-out probing pass.")
    train_device: str | None = Field(default=None, description="Torch device for training (unset: cuda if any).")
    deploy_max_attention_entropy: float = Field(
        default=0.95, gt=0.0, le=1.0, description="deploy: if_better refuses an SSA model whose served attention has "
        "a higher normalised entropy on its dev set (1.0 = uniform: explains nothing); not applied to baseline/co.")

    @model_validator(mode="after")
    def _limits_in_order(self) -> WorkerSettings:
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError("SSA_TASK_SOFT_TIME_LIMIT_S must be below SSA_TASK_TIME_LIMIT_S")
        return self

    @property
    def heartbeat_s(self) -> float:
        """How often a running job refreshes its lease: a third of the lease's lifetime."""
        return self.lease_ttl_s / 3

    @property
    def restore_interval_s(self) -> int:
        """How often a worker looks for unacknowledged messages older than the visibility timeout."""
        return max(1, min(10, self.visibility_timeout_s // 4))

    @property
    def restore_lock_s(self) -> int:
        """Lifetime of the lock a worker takes while restoring messages: a worker killed while holding it blocks
        restores for this long, so it stays well below the visibility timeout."""
        return max(2, min(300, self.visibility_timeout_s // 2))


def worker_settings() -> WorkerSettings:
    """The worker's settings, read from the environment: the one place the worker builds them. Each call reads the
    environment again (a task sees the settings of the process it runs in, as before), so nothing is cached."""
    return WorkerSettings()
