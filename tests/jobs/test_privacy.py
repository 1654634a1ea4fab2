"""What job readers see: errors and logs without server paths or tracebacks (the worker's own log keeps them), and
the weak labels (training text) only with the key."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import RedisServer
from tests.worker.stack import API_KEY, QUICK, JobStack
from worker.joblog import job_logger
from worker.redact import redact_paths


@pytest.fixture
def leaky_stack(tmp_path: Path, redis_server: RedisServer, base_models: str,
                tiny_encoder_dir: Path) -> Any:
    """A stack whose allow-list has `nofiles`: an encoder folder with a config but no tokenizer or weights, so that
    training fails with an error that names the folder."""
    nofiles = tmp_path / "encoders" / "nofiles"
    nofiles.mkdir(parents=True)
    shutil.copy2(tiny_encoder_dir / "config.json", nofiles / "config.json")
    stack = JobStack(tmp_path, redis_server, f"{base_models},nofiles={nofiles}")
    yield stack, nofiles
    stack.close()


def test_job_error_and_log_name_no_server_path_and_hold_no_traceback(
        leaky_stack: tuple[JobStack, Path], sentiment_rows: list[dict[str, Any]]) -> None:
    stack, nofiles = leaky_stack
    worker = stack.worker("leaky", SSA_MAX_ATTEMPTS="1")
    job_id = stack.submit_ok(sentiment_rows[:30], {**QUICK, "base_model": "nofiles"})
    job = stack.wait_status(job_id, "failed", "succeeded", timeout=120)
    assert job["status"] == "failed"
    log = stack.client.get(f"/jobs/{job_id}/log")
    assert log.status_code == 200 and "attempt 1 failed: " in log.text
    served = json.dumps(job) + log.text
    for private in (str(nofiles), str(stack.store.root), str(stack.tmp)):
        assert private not in served
    assert "Traceback" not in served and 'File "' not in served
    assert "…/" in job["error"] or "nofiles" in job["error"]  # the folder's name may show, its path never
    assert "Traceback" in worker.log()  # the worker's own log keeps the whole story
    assert str(nofiles) in worker.log()


def test_the_job_log_file_is_redacted_as_it_is_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job_dir = home / "jobs" / "abc"
    with job_logger(job_dir, "abc", 2, home) as joblog:
        try:
            raise OSError(f"cannot read {job_dir}/train.jsonl nor {home}/models/m/x.onnx nor /opt/enc/config.json")
        except OSError as exc:
            joblog.error("attempt %d failed: %s", 2, exc, exc_info=exc)
        joblog.info("resuming from the checkpoint in %s", job_dir / "checkpoints")
    text = (job_dir / "log.txt").read_text()
    assert "cannot read train.jsonl nor $SSA_HOME/models/m/x.onnx nor …/config.json" in text
    assert "resuming from the checkpoint in checkpoints" in text
    assert "Traceback" not in text and str(tmp_path) not in text
    assert "[attempt 2]" in text


def test_redact_paths_keeps_what_is_not_a_path(tmp_path: Path) -> None:
    text = "ratio 1/2, http://example.org/a/b, ./rel/x, lr=5e-5 / 2"
    assert redact_paths(text, tmp_path / "jobs" / "x", tmp_path) == text


def test_weak_labels_need_the_key_by_default(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:20])
    labels_dir = stack.store.job_dir(job_id) / "labels"
    labels_dir.mkdir()
    (labels_dir / "iter1.jsonl").write_text('{"text": "a private sentence"}\n')
    anonymous = stack.client.get(f"/jobs/{job_id}/labels", headers={"X-API-Key": ""})
    keyed = stack.client.get(f"/jobs/{job_id}/labels", headers={"X-API-Key": API_KEY})
    assert anonymous.status_code == 401 and "private sentence" not in anonymous.text
    assert keyed.status_code == 200 and "a private sentence" in keyed.text
    assert stack.client.get(f"/jobs/{job_id}", headers={"X-API-Key": ""}).status_code == 200  # status stays open


def test_the_job_logger_still_reaches_the_worker_log_with_the_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), job_logger(tmp_path / "jobs" / "j", "j", 1, tmp_path) as joblog:
        try:
            raise ValueError(f"bad file {tmp_path}/x")
        except ValueError as exc:
            joblog.error("failed: %s", exc, exc_info=exc)
    record = next(r for r in caplog.records if r.name == "ssa.job.j")
    assert record.exc_info is not None and str(tmp_path) in record.getMessage()
