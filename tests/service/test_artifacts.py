"""ssa_core.runtime.artifacts: id validation, path containment, staging + atomic publish, active pointer, archives."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssa_core.runtime.artifacts import (
    ACTIVE_FILE,
    ID_MAX_LENGTH,
    SAFE_ID_PATTERN,
    ArtifactStore,
    InvalidId,
    NotFound,
    slugify,
    validate_id,
)


def write_model(folder: Path, model_id: str, version: str = "v1", created: str = "2025-01-01T00:00:00+00:00",
                metrics: dict | None = None) -> Path:
    """A model folder as far as the store is concerned: ssa.json, metrics.json and a payload file."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": 1, "model_id": model_id, "version": version, "created_at": created, "method": "hybrid",
            "task": "classification", "labels": ["negative", "positive"], "max_length": 64, "pair": False,
            "base_model": "minilm", "metric": "accuracy", "dev_metric": 0.75}
    (folder / "ssa.json").write_text(json.dumps(meta))
    (folder / "metrics.json").write_text(json.dumps(metrics or {"metric": "accuracy", "dev": {"accuracy": 0.75}}))
    (folder / "model.onnx").write_bytes(os.urandom(3000))
    (folder / "weak_labels").mkdir(exist_ok=True)
    (folder / "weak_labels" / "iter1.jsonl").write_text('{"x": 1}\n')
    return folder


def publish(store: ArtifactStore, model_id: str, **kwargs: object) -> Path:
    with store.staging() as stage:
        write_model(stage, "whatever", **kwargs)  # type: ignore[arg-type]
        return store.publish_model(stage, model_id)


@pytest.mark.parametrize("good", ["a", "0", "sentiment-minilm", "m.v2_final", "a" * 64, "x.", "a-.b"])
def test_valid_ids_pass(good: str) -> None:
    assert validate_id(good) == good


@pytest.mark.parametrize("bad", ["", "A", "-a", ".a", "_a", "a/b", "a\\b", "..", "a..b", "a" * 65, "a b", "é",
                                 "a\x00", "a\n"])
def test_invalid_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidId, match="invalid"):
        validate_id(bad)


@given(st.text(alphabet="ab.-_Z/", max_size=70))
def test_schema_pattern_agrees_with_validate_id(value: str) -> None:
    """SAFE_ID_PATTERN (+ maxLength) accepts exactly the ids validate_id accepts."""
    by_pattern = bool(re.fullmatch(SAFE_ID_PATTERN, value)) and len(value) <= ID_MAX_LENGTH
    try:
        validate_id(value)
        valid = True
    except InvalidId:
        valid = False
    assert by_pattern == valid


def test_store_creates_its_layout(store: ArtifactStore) -> None:
    assert {p.name for p in store.root.iterdir()} >= {"models", "jobs", ".staging"}
    assert store.model_dir("abc") == store.root / "models" / "abc"
    assert store.job_dir("j1") == store.root / "jobs" / "j1"
    with pytest.raises(InvalidId):
        store.job_dir("../x")


def test_symlinked_model_folder_cannot_leave_the_store(store: ArtifactStore, tmp_path: Path) -> None:
    outside = write_model(tmp_path / "outside", "outside")
    (store.models_root / "evil").symlink_to(outside)
    with pytest.raises(InvalidId, match="outside the store"):
        store.model_dir("evil")
    assert [m.model_id for m in store.list_models()] == []


def test_staging_is_removed_on_error_and_after_publish(store: ArtifactStore) -> None:
    with pytest.raises(RuntimeError), store.staging() as stage:
        (stage / "partial").write_text("x")
        raise RuntimeError("training failed")
    assert not stage.exists()
    path = publish(store, "m1")
    assert (path / "model.onnx").is_file()
    assert list(store.staging_root.iterdir()) == []


def test_publish_sets_the_id_and_refuses_a_taken_one(store: ArtifactStore) -> None:
    path = publish(store, "m1")
    assert json.loads((path / "ssa.json").read_text())["model_id"] == "m1"
    with pytest.raises(FileExistsError, match="m1"):
        publish(store, "m1")
    with store.staging() as stage, pytest.raises(ValueError, match=r"no ssa\.json"):
        store.publish_model(stage, "m2")
    assert not store.has_model("m2")


def test_list_and_get_read_metadata_and_metrics(store: ArtifactStore) -> None:
    publish(store, "old", created="2024-01-01T00:00:00+00:00")
    publish(store, "new", created="2025-06-01T00:00:00+00:00", metrics={"metric": "accuracy", "best_iteration": 2})
    (store.models_root / "broken").mkdir()
    (store.models_root / "broken" / "ssa.json").write_text("{not json")
    assert [m.model_id for m in store.list_models()] == ["new", "old"]
    info = store.get_model("new")
    assert info.labels == ("negative", "positive") and info.dev_metric == 0.75
    assert info.metrics == {"metric": "accuracy", "best_iteration": 2}
    assert "path" in info.to_dict() and "meta" not in info.to_dict()
    with pytest.raises(NotFound, match="unreadable"):
        store.get_model("broken")
    with pytest.raises(NotFound, match="not found"):
        store.get_model("missing")


def test_active_pointer_round_trip(store: ArtifactStore) -> None:
    assert store.active_model_id() is None
    publish(store, "m1")
    store.set_active_model("m1")
    assert store.active_model_id() == "m1"
    assert ArtifactStore(store.root).active_model_id() == "m1"  # survives a new process / instance
    with pytest.raises(NotFound):
        store.set_active_model("missing")
    assert store.active_model_id() == "m1"
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("content", ["{broken", '{"model_id": "../../etc"}', "[]"])
def test_unreadable_active_pointer_means_none(store: ArtifactStore, content: str) -> None:
    (store.root / ACTIVE_FILE).write_text(content)
    assert store.active_model_id() is None


def test_archive_streams_the_folder_as_tar_gz(store: ArtifactStore) -> None:
    path = publish(store, "m1")
    chunks = list(store.archive_model("m1"))
    assert all(chunks)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:gz") as tar:
        names = sorted(tar.getnames())
        payload = tar.extractfile("m1/model.onnx").read()  # type: ignore[union-attr]
    assert names == ["m1/metrics.json", "m1/model.onnx", "m1/ssa.json", "m1/weak_labels/iter1.jsonl"]
    assert payload == (path / "model.onnx").read_bytes()
    with pytest.raises(NotFound):
        store.archive_model("missing")


def test_import_reuses_same_version_and_suffixes_another(store: ArtifactStore, tmp_path: Path) -> None:
    source = write_model(tmp_path / "My Model", "My Model", version="abc123")
    assert store.import_model(source) == "my-model"
    assert store.import_model(source) == "my-model"
    other = write_model(tmp_path / "other", "My Model", version="def456")
    assert store.import_model(other) == "my-model-def456"
    assert store.get_model("my-model-def456").version == "def456"
    assert store.import_model(source, "chosen") == "chosen"


def test_slugify_makes_valid_ids() -> None:
    for name in ("My Model", "..", "a..b", "Ünïcode!", "x" * 100):
        assert validate_id(slugify(name))
