"""The seams between the packages: domain errors carry their fields and map to HTTP through one table
(service.errormap), the app's state is typed, and the API process never loads worker code or validates worker-only
settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI

from service.app import create_app
from service.errormap import DOMAIN_ERRORS, domain_error_response, to_api_error
from service.errors import ApiError, InvalidField, InvalidFields
from service.http.ratelimit import RateLimited
from service.inference.batcher import BatcherStopped, DeadlineExceeded, QueueFull
from service.inference.manager import ModelInUse, ModelLoadFailed
from service.inference.occlusion import OcclusionBusy
from service.settings import Settings
from service.submissions.label import UnknownModel
from service.submissions.train import QueueUnavailable, UploadRejected
from service.submissions.uploadcheck import UploadCheckUnavailable
from service.wiring import AppState, app_state
from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.errors import ConfigError, InvalidId, NotFound
from ssa_core.runtime.artifacts import ArtifactStore, validate_id
from ssa_core.runtime.modelmeta import UnknownVariant

REPO = Path(__file__).resolve().parents[2]


def body(exc: Exception) -> tuple[int, dict[str, object]]:
    response = domain_error_response(exc)
    assert response is not None
    return response.status_code, json.loads(bytes(response.body))["error"]


def test_config_errors_carry_the_field_and_keep_their_message() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(iterations=0)
    assert (caught.value.field, caught.value.reason) == ("iterations", "must be in [1, 50]")
    assert str(caught.value) == "iterations: must be in [1, 50]"
    with pytest.raises(ConfigError) as labels:
        ModelConfig(base_model="x", labels=("only",))
    assert labels.value.field == "labels"


def test_invalid_ids_carry_their_kind_and_map_to_the_field_by_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidId) as caught:
        validate_id("Bad Id", "job id")
    assert (caught.value.kind, caught.value.field, caught.value.value) == ("job id", "job_id", "Bad Id")
    status, error = body(caught.value)
    assert status == 422 and error["type"] == "invalid_id"
    assert error["detail"] == [{"field": "job_id", "message": str(caught.value)}]
    with pytest.raises(InvalidId) as outside:
        ArtifactStore(tmp_path).model_dir("a..b")
    assert body(outside.value)[1]["detail"] == [{"field": "model_id", "message": str(outside.value)}]


def test_one_table_maps_every_domain_error() -> None:
    assert body(NotFound("model 'x' not found")) == (404, {"type": "not_found", "message": "model 'x' not found",
                                                           "detail": None})
    status, error = body(redis.ConnectionError("refused"))
    assert status == 503 and error["type"] == "job_store_unavailable"
    response = domain_error_response(redis.TimeoutError("slow"))
    assert response is not None and response.headers["Retry-After"] == "5"
    assert body(ConfigError("must be in [0, 1)", field="tau"))[1]["detail"] == [
        {"field": "tau", "message": "tau: must be in [0, 1)"}]
    assert domain_error_response(RuntimeError("other")) is None
    assert set(DOMAIN_ERRORS) == {
        NotFound, InvalidId, ConfigError, redis.RedisError, InvalidFields, UnknownVariant, ModelLoadFailed, ModelInUse,
        RateLimited, QueueFull, OcclusionBusy, DeadlineExceeded, BatcherStopped, UploadRejected, UnknownModel,
        UploadCheckUnavailable, QueueUnavailable}


def test_the_rows_take_the_field_and_retry_after_from_the_exception() -> None:
    def headers(exc: Exception) -> dict[str, str]:
        response = domain_error_response(exc)
        assert response is not None
        return dict(response.headers)

    assert body(InvalidField("inputs[3][1]", "text is empty or only whitespace")) == (422, {
        "type": "validation_error", "message": "inputs[3][1]: text is empty or only whitespace",
        "detail": [{"field": "inputs[3][1]", "message": "text is empty or only whitespace"}]})
    assert body(ModelLoadFailed("model m failed to load: x", field="model"))[1]["detail"] == {"field": "model"}
    assert body(ModelInUse("in use")) == (409, {"type": "model_in_use", "message": "in use",
                                                "detail": {"field": "model_id"}})
    assert body(QueueFull(7))[0] == 429 and headers(QueueFull(7))["retry-after"] == "7"
    assert headers(OcclusionBusy(1, 3))["retry-after"] == "3"
    limited = RateLimited(12, limit=6)
    assert body(limited)[1]["message"] == ("too many downloads: at most 6 a minute (SSA_DOWNLOADS_PER_MINUTE); "
                                           "retry later") and headers(limited)["retry-after"] == "12"
    assert body(DeadlineExceeded("no answer within 1 s"))[1]["message"] == (
        "the prediction took too long: no answer within 1 s")
    assert body(QueueUnavailable("j1")) == (503, {"type": "queue_unavailable", "message": "the job queue is "
                                                  "unreachable; try again later", "detail": {"job_id": "j1"}})
    assert headers(QueueUnavailable("j1"))["retry-after"] == "10"
    assert body(UnknownModel("model 'm' not found", "not found"))[1]["detail"] == [
        {"field": "config.model_id", "message": "not found"}]
    assert to_api_error(ApiError(418, "teapot", "short and stout")).status == 418  # type: ignore[union-attr]


def test_the_app_state_is_typed(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, bootstrap=False))
    state = app_state(app)
    assert isinstance(state, AppState) and state.settings.home == tmp_path
    assert state.job_submitter.jobs is state.jobs and state.bootstrap_status == state.bootstrap.status
    with pytest.raises(TypeError, match="create_app"):
        app_state(FastAPI())


def test_the_api_loads_no_worker_code_and_ignores_worker_only_settings(tmp_path: Path) -> None:
    """A worker-only setting that the worker refuses (soft limit above the hard one) cannot break the API."""
    env = {**os.environ, "SSA_HOME": str(tmp_path), "SSA_BOOTSTRAP": "false",
           "SSA_TASK_SOFT_TIME_LIMIT_S": "9000", "SSA_TASK_TIME_LIMIT_S": "10"}
    code = ("import sys; from service.app import create_app; create_app(); "
            "loaded = sorted(m for m in sys.modules if m == 'worker' or m.startswith('worker.')); "
            "print(loaded)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_api_view_of_a_job_has_exactly_the_stored_fields() -> None:
    """JobInfo (the response schema) lists Job's fields itself, to keep its documented schema: they cannot drift."""
    from dataclasses import fields

    from jobs.records import Job
    from service.schemas.jobs import JobInfo

    assert [f.name for f in fields(Job)] + ["events", "disk_bytes"] == list(JobInfo.model_fields)  # + what the API adds
