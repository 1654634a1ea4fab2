"""Publishing a trained model, with a real artifact store and a real trained model folder (the deploy gate that
follows is tested in tests/jobs/test_deploy_gate.py)."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path

import pytest

from jobs.deploy import NotServable
from ssa_core.runtime.artifacts import ArtifactStore
from worker.publish import (
    StorageError,
    check_writable,
    job_staging,
    publish,
    storage_problem,
)
from worker.runner import check_servable, describe
from worker.settings import WorkerSettings


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home")


def test_publish_is_atomic_idempotent_per_job_and_refuses_another_jobs_id(store: ArtifactStore,
                                                                          tiny_model_dir: Path) -> None:
    with job_staging(store, "job-a") as staged:
        shutil.copytree(tiny_model_dir, staged, dirs_exist_ok=True)
        assert not store.has_model("shared")  # staged, not visible
        publish(store, staged, "shared", "job-a")
    assert store.get_model("shared").meta["job_id"] == "job-a"
    with job_staging(store, "job-a") as staged:  # a re-run of job-a that died after publishing
        shutil.copytree(tiny_model_dir, staged, dirs_exist_ok=True)
        publish(store, staged, "shared", "job-a")
    with job_staging(store, "job-b") as staged, pytest.raises(StorageError, match="already taken"):
        shutil.copytree(tiny_model_dir, staged, dirs_exist_ok=True)
        publish(store, staged, "shared", "job-b")
    assert list(store.staging_root.iterdir()) == []


def test_check_servable_refuses_a_staged_model_that_cannot_predict(store: ArtifactStore, tiny_model_dir: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    joblog = logging.getLogger("ssa.test-joblog")
    with job_staging(store, "job-a") as staged:
        shutil.copytree(tiny_model_dir, staged, dirs_exist_ok=True)
        with caplog.at_level(logging.INFO, logger="ssa.test-joblog"):
            check_servable(staged, joblog)
        meta = json.loads((staged / "ssa.json").read_text())
        (staged / "ssa.json").write_text(json.dumps({**meta, "max_length": 600}))  # the encoder has 512 positions
        with pytest.raises(NotServable, match=r"^it fails to predict: ") as refused:
            check_servable(staged, joblog)
    assert str(store.root) not in str(refused.value)
    message, permanent = describe(refused.value, WorkerSettings())
    assert permanent and message.startswith("the trained model cannot serve, so it was not published: it fails to ")
    said = [record.getMessage() for record in caplog.records]
    assert said[:1] == ["the exported model loads and predicts through the ONNX runtime"]


def test_job_staging_removes_what_a_killed_attempt_left(store: ArtifactStore) -> None:
    leftover = store.staging_root / "job-j1"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")
    with job_staging(store, "j1") as staged:
        assert staged == leftover and list(staged.iterdir()) == []
    assert not leftover.exists()


def test_storage_problems_are_recognised_through_wrappers() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/data/models/x/model.onnx")
    assert storage_problem(full) == "No space left on device: /data/models/x/model.onnx"
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("export failed") from inner
    except RuntimeError as wrapped:
        assert storage_problem(wrapped) == "No space left on device: /data/models/x/model.onnx"
    rust = RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "..." })')
    assert storage_problem(rust) == "no space left on device"
    assert storage_problem(ValueError("bad label")) is None
    assert storage_problem(FileNotFoundError(errno.ENOENT, "No such file")) is None


def test_check_writable_names_the_folder(store: ArtifactStore) -> None:
    check_writable(store)
    shutil.rmtree(store.staging_root)
    store.staging_root.write_text("not a folder")
    with pytest.raises(StorageError, match=r"the artifact store is not writable: .*\.staging"):
        check_writable(store)
