"""An unwritable or full artifact store fails the job with a clear error, and never shows a half-written model."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import RedisServer
from tests.worker.stack import QUICK, JobStack

pytestmark = pytest.mark.timeout(240)
IS_ROOT = os.geteuid() == 0


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@contextmanager
def read_only(*folders: Path) -> Iterator[None]:
    """Make folders unwritable for this user: permission bits, or for root (who ignores them) the immutable flag,
    else a read-only bind mount."""
    if not IS_ROOT:
        for folder in folders:
            folder.chmod(0o555)
        try:
            yield
        finally:
            for folder in folders:
                folder.chmod(0o755)
        return
    if all(_run("chattr", "+i", str(folder)) for folder in folders):
        try:
            yield
        finally:
            for folder in folders:
                _run("chattr", "-i", str(folder))
        return
    for folder in folders:
        _run("chattr", "-i", str(folder))
    if not all(_run("mount", "--bind", str(f), str(f)) and _run("mount", "-o", "remount,bind,ro", str(f))
               for f in folders):
        pytest.skip("cannot make a folder unwritable for root here (no chattr, no mount)")
    try:
        yield
    finally:
        for folder in folders:
            _run("umount", str(folder))


def test_unwritable_store_fails_the_job_before_training(stack: JobStack,
                                                        sentiment_rows: list[dict[str, Any]]) -> None:
    stack.worker("readonly")
    with read_only(stack.store.models_root, stack.store.staging_root):
        probe = stack.store.models_root / "probe"
        with pytest.raises(OSError):
            probe.mkdir()
        job_id = stack.submit_ok(sentiment_rows[:40])
        job = stack.wait_status(job_id, "succeeded", "failed", timeout=90)
    assert job["status"] == "failed"
    assert job["error"].startswith("the artifact store is not writable: ")
    assert "SSA_HOME" in job["error"]
    assert job["attempts"] == 1  # retrying cannot help: failed at once
    assert job["iterations"] == []  # failed before training
    assert stack.client.get("/models").json()["models"] == []


@pytest.fixture
def small_tmpfs(tmp_path: Path, tiny_encoder_dir: Path) -> Iterator[Path]:
    """A tmpfs with room for the job's files and its checkpoint, but not for the finished model folder.

    With the 2-layer encoder's weights W bytes, a checkpoint holds about 4 W (weights, best weights, two AdamW
    moments) and the model folder about 2 W (weights + ONNX); 5.5 W runs out while the model is being written."""
    if not IS_ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    weights = (tiny_encoder_dir / "model.safetensors").stat().st_size
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", f"size={int(weights * 5.5) // 1024}k", "tmpfs", str(mountpoint)):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mountpoint
    finally:
        _run("umount", "-l", str(mountpoint))


def test_full_store_fails_the_job_and_no_half_written_model_is_visible(
        tmp_path: Path, redis_server: RedisServer, base_models: str, small_tmpfs: Path,
        sentiment_rows: list[dict[str, Any]]) -> None:
    stack = JobStack(tmp_path, redis_server, base_models, home=small_tmpfs)
    try:
        stack.worker("full-disk")
        job_id = stack.submit_ok(sentiment_rows[:40], {**QUICK, "model_id": "never-published"})
        job = stack.wait_status(job_id, "succeeded", "failed", timeout=120)
        log = stack.client.get(f"/jobs/{job_id}/log").text
        models = stack.client.get("/models")
    finally:
        stack.close()
    assert job["status"] == "failed"
    assert job["error"].startswith("cannot write to the artifact store: ")
    assert "no space left on device" in job["error"].lower()
    assert job["attempts"] == 1
    assert "stage exporting" in log  # the disk filled up while the model folder was being written
    assert models.status_code == 200 and models.json()["models"] == []
    assert not (small_tmpfs / "models" / "never-published").exists()
    assert list((small_tmpfs / "models").iterdir()) == []
    assert list((small_tmpfs / ".staging").iterdir()) == []
