"""Publishing and deploying a trained model, with a real artifact store and a real trained model folder."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from jobs.deploy import decide_deploy
from ssa_core.artifacts import ArtifactStore
from worker.publish import (
    StorageError,
    check_writable,
    job_staging,
    publish,
    storage_problem,
)


def add_model(store: ArtifactStore, source: Path, model_id: str, dev_metric: float, metric: str = "accuracy") -> None:
    """Publish a copy of `source` as `model_id` with the given dev metric in its ssa.json."""
    with job_staging(store, model_id) as staged:
        shutil.copytree(source, staged, dirs_exist_ok=True)
        meta = json.loads((staged / "ssa.json").read_text())
        meta.update(dev_metric=dev_metric, metric=metric)
        (staged / "ssa.json").write_text(json.dumps(meta))
        publish(store, staged, model_id, job_id=f"job-{model_id}")


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home")


def test_deploy_policies(store: ArtifactStore, tiny_model_dir: Path) -> None:
    add_model(store, tiny_model_dir, "first", 0.70)
    assert decide_deploy(store, "if_better", "first").deploy  # nothing active yet
    store.set_active_model("first")
    add_model(store, tiny_model_dir, "worse", 0.60)
    add_model(store, tiny_model_dir, "better", 0.80)
    worse, better = decide_deploy(store, "if_better", "worse"), decide_deploy(store, "if_better", "better")
    assert not worse.deploy and worse.note == "not deployed: dev accuracy 0.6000 <= 0.7000 of active model 'first'"
    assert better.deploy and better.note == "deployed: dev accuracy 0.8000 > 0.7000 of active model 'first'"
    assert decide_deploy(store, "always", "worse").deploy
    assert not decide_deploy(store, "never", "better").deploy
    add_model(store, tiny_model_dir, "other-metric", 0.99, metric="macro_f1")
    assert not decide_deploy(store, "if_better", "other-metric").deploy


def test_if_better_refuses_uniform_attention_before_comparing_scores(store: ArtifactStore,
                                                                     tiny_model_dir: Path) -> None:
    add_model(store, tiny_model_dir, "better", 0.80)
    entropy = json.loads((tiny_model_dir / "metrics.json").read_text())["explanations"]["entropy"]
    assert decide_deploy(store, "if_better", "better", max_entropy=entropy - 0.01).deploy  # nothing active yet
    add_model(store, tiny_model_dir, "first", 0.70)
    store.set_active_model("first")
    assert 0.0 < entropy < 1.0
    refused = decide_deploy(store, "if_better", "better", max_entropy=entropy - 0.01)
    assert not refused.deploy and refused.note.startswith(f"not deployed: its attention is close to uniform "
                                                          f"(normalised entropy {entropy:.3f} >")
    assert decide_deploy(store, "if_better", "better", max_entropy=min(1.0, entropy + 0.01)).deploy
    assert decide_deploy(store, "always", "better", max_entropy=entropy - 0.01).deploy  # if_better only
    baseline = {**store.get_model("better").meta, "method": "baseline"}
    (store.model_dir("better") / "ssa.json").write_text(json.dumps(baseline))
    assert decide_deploy(store, "if_better", "better", max_entropy=0.01).deploy  # no attention: not judged


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
