"""Serving a model's int8 (or fp16) variant: GET /models lists the variants, POST /predict names one (422 for one the
model lacks), and SSA_ONNX_VARIANT picks the default for requests that name none."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.inference.manager import Loaded, ModelManager
from service.metrics import ServiceMetrics
from ssa_core.export.quantize import add_fp16_variant
from ssa_core.runtime.artifacts import ArtifactStore
from tests.conftest import sentiment_dev_texts
from tests.service.conftest import LiveServer, make_settings, publish_copy

TEXT = "A gorgeous, witty, seductive movie."


@pytest.fixture(scope="module")
def variant_store(tmp_path_factory: pytest.TempPathFactory, int8_model_dir: Path, tiny_model_dir: Path
                  ) -> ArtifactStore:
    store = ArtifactStore(tmp_path_factory.mktemp("variants") / "home")
    publish_copy(store, int8_model_dir, "with-int8")
    publish_copy(store, tiny_model_dir, "fp32-only")
    fp16 = tmp_path_factory.mktemp("fp16") / "with-fp16"
    shutil.copytree(tiny_model_dir, fp16)
    add_fp16_variant(fp16, sentiment_dev_texts(32))
    publish_copy(store, fp16, "with-fp16")
    store.set_active_model("with-int8")
    return store


@pytest.fixture(scope="module")
def server(variant_store: ArtifactStore) -> Iterator[LiveServer]:
    with LiveServer(create_app(make_settings(variant_store.root))) as live:
        live.wait_ready("with-int8")
        yield live


def test_models_list_their_variants(server: LiveServer) -> None:
    with server.client() as client:
        with_int8 = client.get("/models/with-int8").json()["variants"]
        fp32_only = client.get("/models/fp32-only").json()["variants"]
        listed = {m["model_id"]: m["variants"] for m in client.get("/models").json()["models"]}
    assert [v["name"] for v in with_int8] == ["fp32", "int8"] and with_int8[0]["file"] == "model.onnx"
    assert with_int8[1]["file"] == "model.int8.onnx" and 0.5 <= with_int8[1]["agreement"] <= 1
    assert with_int8[1]["checked_inputs"] == 200 and with_int8[1]["min_agreement"] == 0.5
    assert with_int8[1]["fp32_matmuls"] == 0  # at threshold 0.5 the fully quantized graph is kept
    assert fp32_only == [{"name": "fp32", "file": "model.onnx", "agreement": None, "checked_inputs": None,
                          "min_agreement": None, "attention_max_abs_diff": None, "score_max_abs_diff": None,
                          "checked_on": None, "fp32_matmuls": None}]
    assert listed["with-int8"] == with_int8


def test_an_fp16_variant_is_listed_and_answers(server: LiveServer) -> None:
    with server.client() as client:
        variants = client.get("/models/with-fp16").json()["variants"]
        fp32 = client.post("/predict", json={"inputs": TEXT, "model": "with-fp16"}).json()
        fp16 = client.post("/predict", json={"inputs": TEXT, "model": "with-fp16", "variant": "fp16"}).json()
    assert [v["name"] for v in variants] == ["fp32", "fp16"]
    assert variants[1]["file"] == "model.fp16.onnx" and variants[1]["checked_inputs"] == 32
    assert variants[1]["checked_on"] == "CPUExecutionProvider" and variants[1]["score_max_abs_diff"] <= 0.01
    assert (fp32["model_variant"], fp16["model_variant"]) == ("fp32", "fp16")
    a, b = fp32["predictions"][0], fp16["predictions"][0]
    assert a["label"] == b["label"] and abs(a["score"] - b["score"]) < 0.01


def test_predict_names_the_variant_that_answers(server: LiveServer) -> None:
    with server.client() as client:
        default = client.post("/predict", json={"inputs": TEXT}).json()
        int8 = client.post("/predict", json={"inputs": TEXT, "variant": "int8"}).json()
        fp32 = client.post("/predict", json={"inputs": TEXT, "variant": "fp32"}).json()
        occlusion = client.post("/predict", json={"inputs": TEXT, "variant": "int8", "explain": "occlusion"}).json()
    assert default["model_variant"] == "fp32" and fp32 == default
    assert int8["model_variant"] == "int8" and int8["model_version"] == default["model_version"]
    a, b = default["predictions"][0], int8["predictions"][0]
    assert [t["text"] for t in a["tokens"]] == [t["text"] for t in b["tokens"]]
    assert abs(a["scores"]["positive"] - b["scores"]["positive"]) < 0.05 and a["scores"] != b["scores"]
    assert occlusion["model_variant"] == "int8" and occlusion["predictions"][0]["explainer"] == "occlusion"


def test_a_variant_the_model_lacks_is_refused_naming_those_it_has(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post("/predict", json={"inputs": TEXT, "model": "fp32-only", "variant": "int8"})
        unknown = client.post("/predict", json={"inputs": TEXT, "variant": "int4"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "variant: model fp32-only has no int8 variant (it has: fp32)"
    assert unknown.status_code == 422 and unknown.json()["error"]["detail"][0]["field"] == "variant"


def test_the_variant_setting_is_the_default_where_the_model_has_it(variant_store: ArtifactStore) -> None:
    app = create_app(make_settings(variant_store.root, onnx_variant="int8"))
    with LiveServer(app) as live, live.client() as client:
        live.wait_ready("with-int8")
        served = client.post("/predict", json={"inputs": TEXT}).json()
        asked = client.post("/predict", json={"inputs": TEXT, "variant": "fp32"}).json()
        other = client.post("/predict", json={"inputs": TEXT, "model": "fp32-only"}).json()
    assert served["model_variant"] == "int8" and asked["model_variant"] == "fp32"
    assert other["model_variant"] == "fp32"  # no int8 there: its fp32 answers


@pytest.mark.parametrize("kept", [0, 1, 2])
def test_side_models_keep_the_most_recently_used_loaded(model_store: ArtifactStore, tiny_model_dir: Path,
                                                        kept: int) -> None:
    """SSA_SIDE_MODELS: models named by requests stay loaded, the most recently used first; beyond, reloaded."""
    publish_copy(model_store, tiny_model_dir, "tiny-c")
    manager = ModelManager(model_store, make_settings(model_store.root, side_models=kept), ServiceMetrics())

    async def uses() -> list[bool]:
        seen: list[Loaded] = []
        reused = []
        for model_id in ("tiny-b", "tiny-c", "tiny-b", "tiny-b"):
            loaded = await manager.side_model(model_id)
            reused.append(any(loaded is earlier for earlier in seen))
            seen.append(loaded)
        return reused

    reused = asyncio.run(uses())
    # tiny-b again after tiny-c: still loaded only when two are kept; right after itself: when any is kept
    assert reused == [False, False, kept >= 2, kept >= 1]


def test_only_the_deployed_model_gets_an_overlap_session(model_store: ArtifactStore) -> None:
    """With SSA_OVERLAP_THREADS the deployed model's variants get a second session for batches that overlap; a side
    model answers occasional comparisons and keeps one session."""
    manager = ModelManager(model_store, make_settings(model_store.root, intra_op_threads=2, overlap_threads=1),
                           ServiceMetrics())

    async def load() -> tuple[Loaded, Loaded]:
        deployed, _ = await manager.deploy("tiny-a", persist=False)
        return deployed, await manager.side_model("tiny-b")

    deployed, side = asyncio.run(load())
    assert deployed.predictor.overlap_session is not None
    assert side.predictor.overlap_session is None
