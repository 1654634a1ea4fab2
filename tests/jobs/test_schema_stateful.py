"""The /jobs endpoints against their own OpenAPI schema (schemathesis), statefully (the stateless run is
tests/jobs/test_schema.py).

A real API server, a Redis of the test's own and no worker: jobs are submitted, read, listed, cancelled and deleted
but never trained, so the run stays within seconds. The stateful run follows the links schemathesis infers from the
schema (a submission's `job_id` into GET /jobs/{job_id}, its cancel, labels, log and DELETE); its submissions carry a
small valid dataset, so that they are accepted and the later steps act on real jobs."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.transport import Response
from schemathesis.openapi import from_dict
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import LiveServer
from tests.worker.procs import RedisServer

KEY = "stateful-key"
EXPLORE = int(os.environ.get("SSA_SCHEMA_EXPLORE", "0"))
ROWS = "".join(json.dumps({"text": f"a {'good' if i % 2 else 'dull'} film, take {i}",
                           "label": "positive" if i % 2 else "negative"}) + "\n" for i in range(16))
SEEN: Counter[str] = Counter()
# the submissions of the stateful run: upload field and job config (label jobs name a model the store lacks: 404)
SUBMITS = {"/jobs/ssa-train": ("train", {"base_model": "tiny", "iterations": 1}),
           "/jobs/ssa-label": ("data", {"model_id": "no-such-model"})}


def app_settings(home: Path, redis_url: str, base_models: str) -> Settings:
    return Settings(home=home, redis_url=redis_url, api_key=KEY, bootstrap=False, allowed_base_models=base_models,
                    max_upload_bytes=64 * 1024, max_body_bytes=64 * 1024)


def jobs_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        return create_app(app_settings(Path(home), "redis://127.0.0.1:1/0", "minilm")).openapi()


SCHEMA = from_dict(jobs_document()).include(path_regex="^/jobs")


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("stateful")
    redis = RedisServer(root / "redis").start()
    try:
        with LiveServer(create_app(app_settings(root / "home", redis.url, f"minilm,tiny={tiny_encoder_dir}"))) as live:
            yield live
    finally:
        redis.stop()


def excluded_checks(case: schemathesis.Case) -> list[Any]:
    """Schema-valid requests a static schema cannot tell apart from acceptable ones: an upload is a binary file whose
    rows are checked after parsing (422 naming the row), a job's labels exist only once it has run (409), a queued
    job can be cancelled once (409 after) and deleted only when it has ended (409)."""
    return [positive_data_acceptance]


def test_jobs_workflows_conform_to_their_schema(jobs_server: LiveServer) -> None:
    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            """Submissions go out with a small valid dataset under a real file name (the generated ones would be
            refused before any job exists); every other step is sent as schemathesis generated it."""
            if case.method != "POST" or case.path not in SUBMITS:
                return case.call(headers={"X-API-Key": KEY}, **kwargs)
            field, config = SUBMITS[case.path]
            sent = requests.post(f"{jobs_server.url}{case.path}", headers={"X-API-Key": KEY}, timeout=30,
                                 files={field: (f"{field}.jsonl", ROWS.encode(), "application/jsonl")},
                                 data={"config": json.dumps(config)})
            return Response.from_requests(sent, True)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": jobs_server.url, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            SEEN[f"{case.method} {case.path} {response.status_code}"] += 1
            # every step carries the server's key and submissions a replaced body: the generated auth and body of those
            # steps never went out, so the checks about them belong to the stateless run above
            replaced = [ignored_auth, negative_data_rejection] if case.method == "POST" and case.path in SUBMITS \
                else [ignored_auth]
            case.validate_response(response, excluded_checks=excluded_checks(case) + replaced, transport_kwargs=kwargs)

    Workflow.run(settings=settings(max_examples=EXPLORE or 25, derandomize=not EXPLORE, stateful_step_count=6,
                                   database=None, deadline=None, suppress_health_check=list(HealthCheck)))
    print(dict(SEEN))
    # the workflows reached real jobs: accepted submissions, then reads, cancels and deletes of them
    assert SEEN["POST /jobs/ssa-train 202"] > 0
    assert any(SEEN[f"GET /jobs/{{job_id}} {code}"] for code in (200,))
    assert SEEN["POST /jobs/{job_id}/cancel 202"] > 0
    assert SEEN["DELETE /jobs/{job_id} 204"] + SEEN["DELETE /jobs/{job_id} 409"] > 0  # deleted, or refused: queued
