"""Bounded uploads: each file is staged on disk (never whole in memory) and validated from there; at most
SSA_MAX_PARALLEL_UPLOADS submissions at once, beyond: 429 + Retry-After with the error body; staged files never
outlive their request."""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from service.errors import ApiError
from service.submissions.uploads import CHUNK, UPLOADS_DIR, Upload, stage_upload
from tests.worker.procs import RedisServer, jsonl
from tests.worker.stack import QUICK, JobStack


def test_submissions_beyond_the_cap_get_429_with_retry_after(tmp_path: Path, redis_server: RedisServer,
                                                             base_models: str,
                                                             sentiment_rows: list[dict[str, Any]]) -> None:
    stack = JobStack(tmp_path, redis_server, base_models, max_parallel_uploads=1)
    submitter = stack.client.app.state.job_submitter  # type: ignore[attr-defined]
    inside, release = threading.Event(), threading.Event()
    validate = submitter.validate_data

    def slow_validate(*args: Any) -> Any:
        inside.set()
        assert release.wait(30)
        return validate(*args)

    submitter.validate_data = slow_validate
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(stack.submit, sentiment_rows[:20], {**QUICK, "model_id": "first"})
            assert inside.wait(30)
            refused = stack.submit(sentiment_rows[:20], {**QUICK, "model_id": "second"})
            label = stack.client.post("/jobs/ssa-label", files={"data": ("rows.jsonl", jsonl(sentiment_rows[:5]))})
            release.set()
            assert first.result(30).status_code == 202
        for response in (refused, label):
            assert response.status_code == 429, response.text
            assert response.headers["Retry-After"] == "5"
            error = response.json()["error"]
            assert error["type"] == "too_many_uploads" and error["detail"] == {"limit": 1}
            assert "SSA_MAX_PARALLEL_UPLOADS" in error["message"]
        submitter.validate_data = validate
        assert stack.submit(sentiment_rows[20:40], {**QUICK, "model_id": "second"}).status_code == 202
    finally:
        release.set()
        stack.close()


def test_uploads_are_staged_on_disk_and_removed_after_the_request(stack: JobStack,
                                                                  sentiment_rows: list[dict[str, Any]]) -> None:
    submitter = stack.client.app.state.job_submitter  # type: ignore[attr-defined]
    seen: list[Upload] = []
    validate = submitter.validate_data

    def spy(config: Any, train: Upload, dev: Upload | None) -> Any:
        seen.append(train)
        assert train.path.is_file() and train.path.stat().st_size == train.size
        assert not hasattr(train, "data")  # no whole-file bytes travel with an upload
        return validate(config, train, dev)

    submitter.validate_data = spy
    bad = jsonl(sentiment_rows[:20]) + b'{"text": "no label"}\n'
    response = stack.submit(bad)
    assert response.status_code == 422
    detail = response.json()["error"]["detail"]
    assert detail[0]["field"] == "train" and detail[0]["row"] == 21 and detail[0]["column"] == "label"
    assert str(stack.home) not in response.text and UPLOADS_DIR not in response.text
    accepted = stack.submit(sentiment_rows[:20])
    assert accepted.status_code == 202
    job_dir = stack.store.job_dir(accepted.json()["job_id"])
    assert (job_dir / "train.jsonl").read_bytes() == jsonl(sentiment_rows[:20])
    assert len(seen) == 2 and not any(upload.path.exists() for upload in seen)
    assert list((stack.home / UPLOADS_DIR).iterdir()) == []


def test_a_too_large_upload_is_refused_while_streaming_and_leaves_no_partial_file(tmp_path: Path) -> None:
    class Chunks(io.RawIOBase):
        """A stream that counts how much was read from it."""

        def __init__(self, size: int) -> None:
            self.left, self.read_bytes = size, 0

        def read(self, n: int = -1) -> bytes:
            assert n > 0, "an upload must be read in chunks, never whole"
            part = min(n, self.left)
            self.left -= part
            self.read_bytes += part
            return b"x" * part

    stream = Chunks(10 * CHUNK)
    with pytest.raises(ApiError) as refused:
        stage_upload("train", "train.csv", stream, 2 * CHUNK, tmp_path)
    assert refused.value.status == 413 and refused.value.detail == {"field": "train", "limit": 2 * CHUNK}
    assert stream.read_bytes <= 3 * CHUNK and list(tmp_path.iterdir()) == []
    staged = stage_upload("dev", "dev.jsonl", io.BytesIO(b"abc"), 2 * CHUNK, tmp_path)
    assert staged.path.read_bytes() == b"abc" and staged.size == 3
    assert staged.sha256 == hashlib.sha256(b"abc").hexdigest()
