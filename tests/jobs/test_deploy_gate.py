"""The deploy gate (jobs.deploy), branch by branch, with a real artifact store, real model folders (the tiny trained
model and variants of its ssa.json / model.onnx) and every prediction through the ONNX runtime.

The dev set is labelled with the tiny model's own predictions, so the tiny model scores 1.0 on it and the same model
with its two labels swapped in ssa.json (same label set, opposite answers) scores 0.0: two real models with known
scores on the same data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from jobs.deploy import (
    NotServable,
    decide_deploy,
    gate_and_deploy,
    load_checked,
    public_reason,
    uniform_attention,
)
from jobs.records import GATE_CHECKS, DeployReport, JobResult
from jobs.store import _decode_json, encode
from ssa_core.data.datasets import Dataset, DatasetColumns, Example
from ssa_core.runtime.artifacts import ArtifactStore, atomic_write_text
from ssa_core.runtime.predictor import Predictor
from tests.conftest import sentiment_train_file


def publish_variant(store: ArtifactStore, source: Path, model_id: str, *, onnx: bytes | None = None,
                    **changes: Any) -> str:
    """Publish a hard-linked copy of `source` with `changes` to its ssa.json (and `onnx` as its model.onnx):
    rewritten files get a new inode, so the source is never touched."""
    with store.staging() as stage:
        shutil.copytree(source, stage, dirs_exist_ok=True, copy_function=os.link)
        meta = json.loads((stage / "ssa.json").read_text())
        atomic_write_text(stage / "ssa.json", json.dumps({**meta, **changes}))
        if onnx is not None:
            (stage / "model.onnx").unlink()
            (stage / "model.onnx").write_bytes(onnx)
        store.publish_model(stage, model_id)
    return model_id


@pytest.fixture(scope="module")
def own_dev(tiny_model_dir: Path) -> Dataset:
    """40 real movie reviews (cut to 300 characters) labelled with the tiny model's own predictions."""
    lines = sentiment_train_file().read_text(encoding="utf-8").splitlines()[:40]
    texts = [json.loads(line)["text"][:300] for line in lines]
    predictor = Predictor.load(tiny_model_dir, provider="cpu")
    labels = [str(p.label) for p in predictor.predict(texts, return_tokens=False, return_words=False)]
    examples = [Example(i, i + 1, text, None, label) for i, (text, label) in enumerate(zip(texts, labels, strict=True))]
    return Dataset(examples, "classification", predictor.labels, "test", DatasetColumns())


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home")


def labels_of(model_dir: Path) -> list[str]:
    return list(json.loads((model_dir / "ssa.json").read_text())["labels"])


def outcomes(report: DeployReport) -> dict[str, str]:
    assert [check.name for check in report.checks] == list(GATE_CHECKS)  # every check recorded, in order
    return {check.name: check.outcome for check in report.checks}


def test_never_runs_no_check(store: ArtifactStore, tiny_model_dir: Path) -> None:
    publish_variant(store, tiny_model_dir, "new")
    report = gate_and_deploy(store, "never", "new")
    assert not report.deployed and report.reason == "not deployed (deploy: never)"
    assert set(outcomes(report).values()) == {"skipped"} and store.active_model_id() is None


@pytest.mark.parametrize("policy", ["if_better", "always"])
def test_with_no_active_model_a_model_that_loads_is_deployed(store: ArtifactStore, tiny_model_dir: Path,
                                                             own_dev: Dataset, policy: str) -> None:
    publish_variant(store, tiny_model_dir, "first")
    report = gate_and_deploy(store, policy, "first", own_dev, "accuracy")  # type: ignore[arg-type]
    assert report.deployed and report.active_before is None and store.active_model_id() == "first"
    assert outcomes(report) == {"labels": "skipped", "loads": "passed", "explanations": "skipped", "score": "skipped"}
    assert report.scores is None


@pytest.mark.parametrize(("change", "said"), [
    ({"labels": ["ham", "spam"]}, "its labels ['ham', 'spam'] differ from the active model 'active'"),
    ({"task": "regression", "labels": []}, "its task 'regression' differs from the active model 'active'"),
    ({"pair": True}, "it takes text pairs, the active model 'active' takes single texts"),
])
@pytest.mark.parametrize("policy", ["if_better", "always"])
def test_another_task_label_set_or_input_kind_ends_the_gate_first(store: ArtifactStore, tiny_model_dir: Path,
                                                                  own_dev: Dataset, change: dict[str, Any],
                                                                  said: str, policy: str) -> None:
    publish_variant(store, tiny_model_dir, "active")
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "other", **change)
    report = gate_and_deploy(store, policy, "other", own_dev, "accuracy")  # type: ignore[arg-type]
    assert not report.deployed and store.active_model_id() == "active" and report.active_before == "active"
    assert report.reason.startswith(f"not deployed: {said}") and '"force": true' in report.reason
    assert outcomes(report) == {"labels": "failed", "loads": "skipped", "explanations": "skipped", "score": "skipped"}
    assert [check.detail for check in report.checks][1:] == ["not reached"] * 3


def test_a_model_that_cannot_load_or_predict_is_refused_without_paths(store: ArtifactStore, tiny_model_dir: Path,
                                                                      own_dev: Dataset, tmp_path: Path) -> None:
    publish_variant(store, tiny_model_dir, "active")
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "garbage", onnx=b"not an onnx file")
    publish_variant(store, tiny_model_dir, "too-long", max_length=600)  # the encoder has 512 positions
    for model_id, said in (("garbage", "it fails to load"), ("too-long", "it fails to predict")):
        for policy in ("always", "if_better"):
            report = gate_and_deploy(store, policy, model_id, own_dev, "accuracy")  # type: ignore[arg-type]
            assert not report.deployed and store.active_model_id() == "active", model_id
            assert report.reason.startswith(f"not deployed: the model cannot serve: {said}: "), report.reason
            assert outcomes(report) == {"labels": "passed", "loads": "failed", "explanations": "skipped",
                                        "score": "skipped"}
            shown = report.model_dump_json()
            assert str(tmp_path) not in shown and "Traceback" not in shown and "/home/" not in shown


def test_uniform_explanations_are_refused_before_any_score(store: ArtifactStore, tiny_model_dir: Path,
                                                           own_dev: Dataset) -> None:
    publish_variant(store, tiny_model_dir, "active")
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "new")
    entropy = json.loads((tiny_model_dir / "metrics.json").read_text())["explanations"]["entropy"]
    assert 0.0 < entropy < 1.0
    report = gate_and_deploy(store, "if_better", "new", own_dev, "accuracy", max_entropy=entropy - 0.01)
    assert not report.deployed and report.reason == uniform_attention(store, "new", entropy - 0.01)
    assert outcomes(report) == {"labels": "passed", "loads": "passed", "explanations": "failed", "score": "skipped"}
    assert report.scores is None
    always = gate_and_deploy(store, "always", "new", own_dev, "accuracy", max_entropy=entropy - 0.01)
    assert always.deployed and outcomes(always)["explanations"] == "skipped"  # if_better only


def test_baseline_models_are_not_judged_on_their_explanations(store: ArtifactStore, tiny_model_dir: Path,
                                                              own_dev: Dataset) -> None:
    publish_variant(store, tiny_model_dir, "active", labels=labels_of(tiny_model_dir)[::-1])  # scores 0.0
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "plain", method="baseline")
    report = gate_and_deploy(store, "if_better", "plain", own_dev, "accuracy", max_entropy=0.01)
    assert report.checks[2].outcome == "skipped" and "baseline" in report.checks[2].detail
    assert report.deployed and store.active_model_id() == "plain"


def test_both_models_are_scored_on_the_same_dev_set_and_the_better_one_wins(store: ArtifactStore,
                                                                            tiny_model_dir: Path,
                                                                            own_dev: Dataset) -> None:
    swapped = labels_of(tiny_model_dir)[::-1]
    publish_variant(store, tiny_model_dir, "swapped", labels=swapped, dev_metric=0.99)  # its own dev score: high
    publish_variant(store, tiny_model_dir, "own", dev_metric=0.10)
    store.set_active_model("swapped")
    report = gate_and_deploy(store, "if_better", "own", own_dev, "accuracy")
    assert report.deployed and store.active_model_id() == "own"
    assert outcomes(report) == {"labels": "passed", "loads": "passed", "explanations": "passed", "score": "passed"}
    assert report.scores is not None and report.scores.model_dump() == {"metric": "accuracy", "examples": 40,
                                                                        "new": 1.0, "active": 0.0}
    assert report.reason == ("deployed: dev accuracy 1.0000 > 0.0000 of active model 'swapped' on this job's dev set "
                             "(40 examples, ONNX runtime)")
    back = gate_and_deploy(store, "if_better", "swapped", own_dev, "macro_f1")  # the ssa.json scores do not count
    assert not back.deployed and store.active_model_id() == "own" and back.checks[3].outcome == "failed"
    assert back.scores is not None and (back.scores.metric, back.scores.new, back.scores.active) == ("macro_f1", 0.0,
                                                                                                     1.0)


def test_a_tie_keeps_the_active_model(store: ArtifactStore, tiny_model_dir: Path, own_dev: Dataset) -> None:
    publish_variant(store, tiny_model_dir, "active")
    publish_variant(store, tiny_model_dir, "twin")
    store.set_active_model("active")
    report = gate_and_deploy(store, "if_better", "twin", own_dev, "accuracy")
    assert not report.deployed and store.active_model_id() == "active"
    assert report.scores is not None and report.scores.new == report.scores.active == 1.0
    assert report.reason.startswith("not deployed: dev accuracy 1.0000 = 1.0000 of active model 'active'")


def test_an_active_model_that_cannot_be_scored_gives_way(store: ArtifactStore, tiny_model_dir: Path,
                                                         own_dev: Dataset) -> None:
    publish_variant(store, tiny_model_dir, "active", onnx=b"not an onnx file")
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "new")
    report = gate_and_deploy(store, "if_better", "new", own_dev, "accuracy")
    assert report.deployed and store.active_model_id() == "new"
    assert report.scores is not None and report.scores.active is None and report.scores.new == 1.0
    assert "the active model 'active' could not be scored" in report.reason


def test_decide_deploy_switches_nothing_and_the_gate_logs_each_check(store: ArtifactStore, tiny_model_dir: Path,
                                                                     own_dev: Dataset,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    import logging

    publish_variant(store, tiny_model_dir, "new")
    joblog = logging.getLogger("ssa.test-joblog")
    with caplog.at_level(logging.INFO, logger="ssa.test-joblog"):
        report = decide_deploy(store, "always", "new", own_dev, "accuracy", joblog=joblog)
    assert report.deployed and store.active_model_id() is None
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(":")[1].split()[0] for line in lines[:4]] == ["labels", "loads", "explanations", "score"]
    assert lines[-1] == "deploy gate: deployed (deploy: always)"


def test_the_report_is_a_typed_part_of_the_job_result(store: ArtifactStore, tiny_model_dir: Path,
                                                      own_dev: Dataset) -> None:
    publish_variant(store, tiny_model_dir, "active", labels=labels_of(tiny_model_dir)[::-1])
    store.set_active_model("active")
    publish_variant(store, tiny_model_dir, "new")
    report = gate_and_deploy(store, "if_better", "new", own_dev, "accuracy")
    result = JobResult(model_id="new", metric="accuracy", dev_metric=0.5, best_iteration=0, deploy_gate=report)
    back = JobResult.model_validate(_decode_json("result", encode(result)))
    assert back == result and isinstance(back.deploy_gate, DeployReport) and back.deploy_gate.scores is not None
    assert back.deploy_gate.scores.new == 1.0 and back.deploy_gate.checks[0].name == "labels"


def test_load_checked_and_public_reasons(tiny_model_dir: Path, tmp_path: Path) -> None:
    predictor = load_checked(tiny_model_dir)
    assert predictor.model_id == json.loads((tiny_model_dir / "ssa.json").read_text())["model_id"]
    missing = tmp_path / "nothing-here"
    with pytest.raises(NotServable) as refused:
        load_checked(missing)
    assert str(refused.value).startswith("it fails to load: ModelFolderError: ") and str(tmp_path) not in str(
        refused.value)
    error = OSError(f"cannot open {tmp_path}/models/x/model.onnx: broken\nTraceback (most recent call last): ...")
    assert public_reason(error) == "OSError: cannot open model.onnx: broken"
    in_folder = ValueError(f"{tmp_path}/m is bad")
    assert public_reason(in_folder, folder=tmp_path / "m") == "ValueError: the model folder is bad"
    assert len(public_reason(RuntimeError("x" * 1000))) == 300
