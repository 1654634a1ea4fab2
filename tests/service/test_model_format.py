"""Model folders written before ssa_core.runtime.modelmeta existed (fixtures/model-folder-v1: ssa.json, metrics.json and
card.md as the pipeline wrote them) still read, list, compare and show as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jobs.deploy import decide_deploy
from service.routes.models import model_out
from ssa_core.data.datasets import Dataset, DatasetColumns, Example
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.modelmeta import LEGACY_CARD_FILE, SSA_FILE, ModelMeta, ModelMetaError
from worker.publish import stamp_job

FOLDER = Path(__file__).parent / "fixtures" / "model-folder-v1"


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "home")
    shutil.copytree(FOLDER, store.models_root / "sentiment-old")
    return store


def test_old_ssa_json_reads_with_typed_fields_and_every_key() -> None:
    meta = ModelMeta.read(FOLDER)
    assert (meta.model_id, meta.version, meta.method, meta.task) == ("sentiment-old", "3f2a9c1b7d40", "hybrid",
                                                                     "classification")
    assert meta.labels == ("negative", "positive") and meta.max_length == 128 and meta.pair is False
    assert (meta.metric, meta.dev_metric, meta.job_id, meta.pad_token_id) == ("accuracy", 0.85,
                                                                              "0123456789abcdef0123456789abcdef", 0)
    assert meta["onnx"]["opset"] == 17 and meta.get("training", {})["iterations"] == 2
    written = json.loads((FOLDER / SSA_FILE).read_text())
    assert meta.to_dict() == written  # nothing is lost or added when it is written back


def test_the_store_and_the_models_route_show_an_old_folder_as_before(store: ArtifactStore) -> None:
    info = store.get_model("sentiment-old")
    assert (info.version, info.dev_metric, info.metric, info.labels) == ("3f2a9c1b7d40", 0.85, "accuracy",
                                                                         ("negative", "positive"))
    assert info.metrics is not None and info.metrics["best_iteration"] == 1
    out = model_out(info, active="sentiment-old", served=None, with_card=True)
    assert out.ssa == {"lambda_tok": 0.3, "tau": 0.3, "cls_weight": 0.5, "attention_temperature": 1.0,
                       "pool_transform": "none"}
    assert out.card == (FOLDER / LEGACY_CARD_FILE).read_text() and out.active and not out.loaded
    assert [model.model_id for model in store.list_models()] == ["sentiment-old"]


def test_the_deploy_gate_compares_against_an_old_active_model(store: ArtifactStore, tmp_path: Path,
                                                              tiny_model_dir: Path) -> None:
    for name in ("model.onnx", "tokenizer.json"):  # the old folder's runtime files (the fixture keeps only text)
        shutil.copy(tiny_model_dir / name, store.model_dir("sentiment-old") / name)
    store.set_active_model("sentiment-old")
    new = tmp_path / "new"
    shutil.copytree(tiny_model_dir, new)
    stamp_job(new, "job-new")
    store.publish_model(new, "sentiment-new")
    texts = ["A gorgeous, witty film.", "Dull and slow.", "I loved it.", "A mess."]
    dev = Dataset([Example(i, i + 1, text, None, label) for i, (text, label)
                   in enumerate(zip(texts, ["positive", "negative"] * 2, strict=True))],
                  "classification", ("negative", "positive"), "test", DatasetColumns())
    report = decide_deploy(store, "if_better", "sentiment-new", dev, "accuracy")
    assert [check.outcome for check in report.checks] == ["passed"] * 3 + ["failed"]  # the same ONNX: a tie
    assert report.scores is not None and report.scores.new == report.scores.active and report.scores.examples == 4
    assert not report.deployed and report.active_before == "sentiment-old"
    assert store.get_model("sentiment-new").meta.job_id == "job-new"


def test_a_folder_without_a_required_key_is_refused_by_name(tmp_path: Path) -> None:
    meta = json.loads((FOLDER / SSA_FILE).read_text())
    del meta["max_length"]
    (tmp_path / SSA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelMetaError, match="lacks 'max_length'"):
        ModelMeta.read(tmp_path)
