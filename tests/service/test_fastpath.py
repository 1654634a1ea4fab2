"""service.http.fastpath answers POST /predict exactly as the middleware stack does: two apps serve the same stored
model, one with the fast path (the default) and one without (SSA_PREDICT_FAST_PATH=false), and every request is
sent to both. A counting wrapper around the stack shows which requests the fast path answered itself."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from service.app import create_app
from service.http.fastpath import FastPath
from service.wiring import app_state
from ssa_core.runtime.artifacts import ArtifactStore
from tests.service.conftest import API_KEY, make_settings

JSON = {"content-type": "application/json"}
VARYING_HEADERS = {"date", "server"}


class StackCalls:
    """Wraps the fast path's stack and counts the requests that reached it."""

    def __init__(self, fast: FastPath) -> None:
        self.inner, self.count = fast.stack, 0
        fast.stack = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.count += 1
        await self.inner(scope, receive, send)


def ready(client: TestClient, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not client.get("/readyz").json()["ready"]:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.05)


def started(app: FastAPI, client: TestClient) -> FastPath:
    """The app's fast path, once its model is loaded."""
    ready(client)
    fast = app.middleware_stack
    assert isinstance(fast, FastPath)
    return fast


@pytest.fixture
def twins(model_store: ArtifactStore) -> Iterator[tuple[TestClient, TestClient, StackCalls]]:
    """(fast path, stack only, the fast path's stack calls), both serving tiny-a."""
    fast_app = create_app(make_settings(model_store.root))
    stack_app = create_app(make_settings(model_store.root, predict_fast_path=False))
    with TestClient(fast_app) as fast_client, TestClient(stack_app) as stack_client:
        calls = StackCalls(started(fast_app, fast_client))
        ready(stack_client)
        yield fast_client, stack_client, calls


def answer(client: TestClient, body: bytes | Iterator[bytes], headers: dict[str, str]) -> tuple[int, dict, Any]:
    response = client.post("/predict", content=body, headers=headers)
    kept = {name: value for name, value in response.headers.items() if name not in VARYING_HEADERS}
    return response.status_code, kept, response.content


def both(twins: tuple[TestClient, TestClient, StackCalls], body: bytes | list[bytes],
         headers: dict[str, str]) -> tuple[tuple[int, dict, Any], int]:
    """The fast path's answer (asserted equal to the stack's) and how many requests it passed to its stack."""
    fast_client, stack_client, calls = twins
    before = calls.count
    answers = [answer(client, iter(body) if isinstance(body, list) else body, headers)
               for client in (fast_client, stack_client)]
    assert answers[0] == answers[1]
    return answers[0], calls.count - before


ORDINARY = [
    ("one text", {"inputs": "A gorgeous, witty movie."}),
    ("texts", {"inputs": ["Dull.", "A gorgeous, witty, seductive movie."], "return_tokens": False}),
    ("unicode", {"inputs": "Ça marche — très bien 👍"}),
    ("duplicate key", None),
    ("vendor JSON type", {"inputs": "A fine film."}),
]


@pytest.mark.parametrize(("case", "payload"), ORDINARY, ids=[c[0] for c in ORDINARY])
def test_ordinary_requests_are_answered_on_the_short_path_as_the_stack_answers_them(
        twins: tuple[TestClient, TestClient, StackCalls], case: str, payload: dict[str, Any] | None) -> None:
    body = b'{"inputs": "first", "inputs": "second"}' if payload is None else json.dumps(payload).encode()
    headers = {"content-type": "application/vnd.api+json; charset=utf-8"} if case == "vendor JSON type" else JSON
    (status, headers, content), stack_calls = both(twins, body, headers)
    assert status == 200 and stack_calls == 0
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff" and "frame-ancestors" in headers["content-security-policy"]
    assert json.loads(content)["predictions"]


DEEP = b'{"inputs": "x", "truncate": ' + b"[" * 70 + b"]" * 70 + b"}"
SHALLOW_BRACKETS = b'{"inputs": "' + b"[{" * 40 + b'"}'
PASSED_ON = [
    ("invalid JSON", b'{"inputs": ', JSON, 400),
    ("trailing garbage", b'{"inputs": "x"} x', JSON, 400),
    ("not UTF-8", b'{"inputs": "caf\xe9"}', JSON, 400),
    ("UTF-16", '{"inputs": "x"}'.encode("utf-16"), JSON, 400),
    ("nested too deep", DEEP, JSON, 400),
    ("many brackets inside a string", SHALLOW_BRACKETS, JSON, 200),  # counted cheaply, then left to the stack
    ("NaN", b'{"inputs": "x", "truncate": NaN}', JSON, 422),
    ("huge integer", b'{"inputs": "x", "truncate": 123456789012345678901234567890}', JSON, 422),
    ("lone surrogate", b'{"inputs": "\\ud800"}', JSON, 422),
    ("empty body", b"", JSON, 422),
    ("not an object", b'["a"]', JSON, 422),
    ("extra field", b'{"inputs": "x", "nope": 1}', JSON, 422),
    ("wrong type", b'{"inputs": "x", "truncate": "yes"}', JSON, 422),
    ("no content type", b'{"inputs": "x"}', {}, 422),
    ("plain-text content type", b'{"inputs": "x"}', {"content-type": "text/plain"}, 422),
    ("too large (Content-Length)", b'{"inputs": "' + b"x" * 1_100_000 + b'"}', JSON, 413),
    ("too large (chunked)", [b'{"inputs": "'] + [b"x" * 100_000] * 11 + [b'"}'], JSON, 413),
]


@pytest.mark.parametrize(("case", "body", "headers", "status"), PASSED_ON, ids=[c[0] for c in PASSED_ON])
def test_every_other_body_is_answered_by_the_stack(twins: tuple[TestClient, TestClient, StackCalls], case: str,
                                                   body: bytes | list[bytes], headers: dict[str, str],
                                                   status: int) -> None:
    (got, _, content), stack_calls = both(twins, body, headers)
    assert (got, stack_calls) == (status, 1)
    if status != 200:
        assert set(json.loads(content)["error"]) == {"type", "message", "detail"}


AFTER_VALIDATION = [
    ("unknown model", {"inputs": "x", "model": "nope"}, 404),
    ("unknown variant", {"inputs": "x", "variant": "fp16"}, 422),
    ("empty text", {"inputs": ["fine", " "]}, 422),
    ("too long, not truncated", {"inputs": "word " * 400, "truncate": False}, 422),
]


@pytest.mark.parametrize(("case", "payload", "status"), AFTER_VALIDATION, ids=[c[0] for c in AFTER_VALIDATION])
def test_errors_after_validation_are_answered_as_the_error_handlers_answer_them(
        twins: tuple[TestClient, TestClient, StackCalls], case: str, payload: dict[str, Any], status: int) -> None:
    (got, headers, content), stack_calls = both(twins, json.dumps(payload).encode(), JSON)
    assert (got, stack_calls) == (status, 0)
    assert headers["x-frame-options"] == "DENY"
    assert json.loads(content)["error"]["type"] in ("not_found", "validation_error")


def test_the_read_key_is_checked_where_reads_need_it(model_store: ArtifactStore) -> None:
    app = create_app(make_settings(model_store.root, reads_require_key=True))
    with TestClient(app) as client:
        calls = StackCalls(started(app, client))
        body = {"inputs": "A fine film."}
        assert client.post("/predict", json=body).status_code == 401
        assert client.post("/predict", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert calls.count == 2
        keyed = client.post("/predict", json=body, headers={"X-API-Key": API_KEY.encode()})
        assert keyed.status_code == 200 and calls.count == 2


def test_short_path_requests_are_in_the_latency_metric(twins: tuple[TestClient, TestClient, StackCalls]) -> None:
    fast_client, _, calls = twins
    for _ in range(3):
        assert fast_client.post("/predict", json={"inputs": "fine"}).status_code == 200
    fast_client.post("/predict", json={"inputs": "x", "model": "nope"})
    assert calls.count == 0
    metrics = fast_client.get("/metrics").text
    count = re.compile(r'^ssa_request_latency_seconds_count\{method="POST",route="/predict",status="(\d+)"\} (\S+)$',
                       re.M)
    assert dict(count.findall(metrics)) == {"200": "3.0", "404": "1.0"}


def test_an_unexpected_error_is_a_500_in_the_error_shape(model_store: ArtifactStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(make_settings(model_store.root))
    with TestClient(app, raise_server_exceptions=False) as client:
        calls = StackCalls(started(app, client))

        async def broken(*args: Any, **kwargs: Any) -> Any:  # a bug inside the batcher: cannot be caused from outside
            raise RuntimeError("secret internals at /srv/x")

        monkeypatch.setattr(app_state(app).batcher, "submit", broken)
        response = client.post("/predict", json={"inputs": "fine"})
    assert calls.count == 0
    assert response.status_code == 500 and response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["error"]["type"] == "internal_error" and "/srv" not in response.text
