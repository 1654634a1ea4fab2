"""Service settings, read from the environment (prefix SSA_) by pydantic-settings. Nothing else reads the environment.

Every field carries a description; docs/API_NOTES.md lists them as a table."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobs.basemodels import parse_base_models
from jobs.spec import DEFAULT_BASE_MODEL
from ssa_core.vocabulary import OnnxVariant, Provider

MiB = 1 << 20
PrivateRead = Literal["labels", "downloads", "logs"]


class Settings(BaseSettings):
    """Configuration of the API process (`ssa serve`)."""

    model_config = SettingsConfigDict(env_prefix="SSA_", extra="ignore", frozen=True)

    home: Path = Field(default=Path("./var/ssa"), description="Artifact store root (models/, jobs/, active.json).")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0",
                           description="Redis URL: Celery broker, result backend and job store.")
    host: str = Field(default="0.0.0.0", description="Interface `ssa serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `ssa serve` listens on.")
    log_level: str = Field(default="info", description="Log level of the API process (debug, info, warning, error).")

    # auth
    api_key: SecretStr | None = Field(
        default=None, description="Key for write endpoints, sent in the X-API-Key header. "
        "Unset: writes are refused with 401 unless auth_disabled is true.")
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="More keys accepted for writes (and keyed reads) besides api_key: a comma list, so "
        "that a key can be rotated without downtime (add the new key, move the clients, drop the old one).")
    auth_disabled: bool = Field(default=False, description="Allow writes without a key (local development only).")
    reads_require_key: bool = Field(default=False, description="Also require X-API-Key on read endpoints.")
    private_reads: Annotated[tuple[PrivateRead, ...], NoDecode] = Field(
        default=("labels", "downloads"), description="Read endpoints that need X-API-Key even while reads are "
        "open: comma list of labels (GET /jobs/{id}/labels: training text), downloads (GET "
        "/models/{id}/download), logs (GET /jobs/{id}/log); empty: none.")
    downloads_per_minute: int = Field(
        default=6, ge=1, le=10_000, description="Most model downloads one API key (or, where downloads need no "
        "key, one client address) may start per minute; beyond: 429 + Retry-After.")

    # models and inference
    provider: Provider = Field(
        default="auto", description="ONNX Runtime execution provider: auto (CUDA when usable, else CPU), cuda, cpu.")
    intra_op_threads: int | None = Field(
        default=None, ge=1, le=256, description="ONNX Runtime intra-op threads (unset: one per core).")
    ort_spinning: bool = Field(
        default=False, description="Let ONNX Runtime's threads busy-wait between the operators of a run (never "
        "between runs): a run waits less for its threads, but takes cores from batches running beside it. The main "
        "session does it anyway while an overlap session (SSA_OVERLAP_THREADS) takes the runs that overlap.")
    model: Path | None = Field(
        default=None, description="Model folder to publish and deploy at start (`ssa serve --model`).")
    bootstrap: bool = Field(
        default=True, description="With an empty store, train and deploy the default model from the shipped sample "
        "through the job queue.")
    bootstrap_job: dict[str, Any] | None = Field(
        default=None, description="JSON object of training-job settings that replace the bootstrap job's defaults, "
        "e.g. {\"iterations\": 1} for a quick test.")
    side_models: int = Field(
        default=2, ge=0, le=64, description="Stored models other than the deployed one kept loaded for requests that "
        "name them (`\"model\": id`), the most recently used first; each holds its weights in memory (0: such requests "
        "load the model every time).")
    active_poll_s: float = Field(
        default=2.0, gt=0, le=3600, description="How often active.json is re-read, so that a model deployed by "
        "another process (the worker) is picked up.")

    # micro-batcher
    max_batch_size: int = Field(default=32, ge=1, le=1024, description="Most inputs run through the model at once.")
    max_wait_ms: float = Field(default=5.0, ge=0, le=1000, description="Longest wait for requests to fill a batch.")
    bucket_size: int = Field(
        default=8, ge=1, le=1024, description="A batch is sorted by length and run in chunks of this many inputs, "
        "so that little padding is computed (CPU: small, 4-8; GPU: as large as max_batch_size).")
    inference_workers: int = Field(
        default=2, ge=1, le=64, description="Batches that run at once, each on a thread of its own: while one batch "
        "is in Python (tokenization, spans, rendering), another is in the model (a batch that starts while another "
        "is in flight runs on the overlap session, SSA_OVERLAP_THREADS; 1: one batch at a time; measured in "
        "bench/results/serving.md).")
    overlap_threads: int = Field(
        default=0, ge=0, le=256, description="Intra-op threads of a second ONNX Runtime session of each variant of "
        "the deployed model (CPU; side models keep one), which runs batches while another predict call is in flight; "
        "a lone batch then runs on the main session with all its threads, spinning within its run (0: no second "
        "session; e.g. cores / SSA_INFERENCE_WORKERS). Lower latency alone on a quiet machine, for a second "
        "session's memory; bench/results/serving.md measures it.")
    queue_size: int = Field(default=1024, ge=1, description="Most predict requests waiting; beyond: 429 + Retry-After.")
    predict_fast_path: bool = Field(
        default=True, description="Answer ordinary POST /predict requests ahead of the ASGI middleware stack, with "
        "the same checks, headers and metrics (service/http/fastpath.py; any other request, every error included, "
        "goes through the stack). false: every request through the stack; bench/results/serving.md measures both.")
    request_timeout_s: float = Field(default=30.0, gt=0, description="Deadline of a predict request; beyond: 504.")

    # model variants (`ssa export --quantize int8|fp16`, or a job's `quantize: int8`)
    # not SSA_VARIANT: the images set that to their build (cpu or gpu)
    onnx_variant: OnnxVariant = Field(
        default="fp32", description="The ONNX variant that answers /predict requests that name none: int8 or fp16 "
        "where the served model has it (else fp32); a request's `variant` overrides it.")

    # occlusion explainer (POST /predict with "explain": "occlusion")
    occlusion_max_words: int = Field(
        default=64, ge=1, le=512, description="Most words in one input explained by occlusion (one extra model run "
        "per word); beyond: 422.")
    occlusion_concurrency: int = Field(
        default=1, ge=1, le=64, description="Most occlusion requests running at once, on their own threads apart "
        "from the micro-batcher; beyond: 429 + Retry-After.")

    # request limits
    max_body_bytes: int = Field(default=1 * MiB, ge=1024, description="Largest body (except dataset uploads): 413.")
    max_inputs: int = Field(default=64, ge=1, le=4096, description="Most inputs in one predict request.")
    max_chars: int = Field(default=10_000, ge=1, description="Most characters in one input text.")
    max_upload_bytes: int = Field(default=50 * MiB, ge=1024, description="Largest dataset upload (bodies under /jobs).")
    max_parallel_uploads: int = Field(
        default=2, ge=1, le=64, description="Most dataset-upload submissions (POST /jobs/ssa-train, /jobs/ssa-label) "
        "staged and validated at once (in a pool of as many validation processes, at a lower CPU priority); beyond: "
        "429 + Retry-After.")

    # jobs
    allowed_base_models: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(DEFAULT_BASE_MODEL,),
        description="Comma list of base-model names jobs may use; `name=path` pairs name a local folder.")

    @field_validator("allowed_base_models", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, tuple | list):
            parse_base_models(value)  # the worker's rule: ValueError naming a bad entry
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("private_reads", mode="before")
    @classmethod
    def _split_reads(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def base_models(self) -> dict[str, str | None]:
        """allowed_base_models as name -> local path (None: a name the worker resolves, e.g. minilm)."""
        return parse_base_models(self.allowed_base_models)

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def accepted_keys(self) -> tuple[str, ...]:
        """Every key a request may send: api_key (when set, non-empty) and each of api_keys."""
        keys = [self.api_key_value() or "", *(key.get_secret_value() for key in self.api_keys)]
        return tuple(key for key in keys if key)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read from the environment once)."""
    return Settings()
