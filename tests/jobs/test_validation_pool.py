"""Uploads are validated out of the API process (service.submissions.uploadcheck): in a pool process at a lower CPU
priority, with the same summary and the same problems as in-process validation, and no process left after shutdown."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.submissions.uploadcheck import NICENESS, SummaryRequest, UploadCheckPool, summarize_here
from ssa_core.data.datasets import DatasetColumns, DatasetError
from tests.worker.procs import RedisServer, jsonl
from tests.worker.stack import QUICK, JobStack


@pytest.fixture
def pool() -> Iterator[UploadCheckPool]:
    validation = UploadCheckPool(2)
    yield validation
    validation.shutdown()


def request(path: Path) -> SummaryRequest:
    return SummaryRequest(path, "upload.jsonl", DatasetColumns(), None, 1 << 20)


def test_validation_runs_in_another_process_at_lower_priority(pool: UploadCheckPool, tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(jsonl([{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(10)]))
    assert not pool.started  # started on first use
    summary = pool(request(path))
    here = summarize_here(request(path))
    assert (summary.task, summary.labels, summary.count, list(summary.rows)) == \
        (here.task, here.labels, here.count, list(here.rows))
    children = multiprocessing.active_children()
    assert children and all(child.pid != os.getpid() for child in children)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    lower = min(mine + NICENESS, 19)  # niceness stops at 19
    assert all(os.getpriority(os.PRIO_PROCESS, child.pid or 0) == lower for child in children)
    if hasattr(os, "SCHED_IDLE"):  # where niceness could not go NICENESS steps lower: the idle class
        idle = mine + NICENESS > 19
        assert all((os.sched_getscheduler(child.pid or 0) == os.SCHED_IDLE) == idle for child in children)


def test_problems_come_back_as_in_process(pool: UploadCheckPool, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": " ", "label": "x"}\n[1]\n')
    with pytest.raises(DatasetError) as there:
        pool(request(path))
    with pytest.raises(DatasetError) as here:
        summarize_here(request(path))
    assert there.value.problems == here.value.problems and there.value.source == "upload.jsonl"
    assert str(there.value) == str(here.value)


def test_shutdown_leaves_no_process(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(jsonl([{"text": "a", "label": "x"}]))
    validation = UploadCheckPool(1)
    validation(request(path))
    started = multiprocessing.active_children()
    assert started
    validation.shutdown()
    assert not validation.started
    assert all(not child.is_alive() for child in started)


def test_the_app_validates_in_its_pool_and_stops_it_on_shutdown(tmp_path: Path, redis_server: RedisServer) -> None:
    stack = JobStack(tmp_path, redis_server, "tiny")
    try:
        validation = stack.client.app.state.upload_checks  # type: ignore[attr-defined]
        bad = stack.submit([{"text": "a", "label": "x"}, {"text": "", "label": "x"}], QUICK)
        assert bad.status_code == 422
        problem = {"field": "train", "row": 2, "column": "text", "message": "empty text"}
        assert bad.json()["error"]["detail"][0] == problem
        assert validation.started
        children = multiprocessing.active_children()
    finally:
        stack.close()
    assert not validation.started
    assert all(not child.is_alive() for child in children)
