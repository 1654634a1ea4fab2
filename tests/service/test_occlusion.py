"""POST /predict with "explain": "occlusion": leave-one-word-out scores from the served ONNX model, checked against
direct deletions through the runtime; the word cap (422) and the concurrency bound (429) of the occlusion lane."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.inference.occlusion import OcclusionBusy, OcclusionLane
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.predictor import Predictor, deleted, softmax, words_of
from tests.service.conftest import LiveServer, make_settings
from tests.service.test_predict_api import TEXT, assert_error, post


def test_occlusion_scores_are_the_drop_when_each_word_is_deleted(shared_live: LiveServer,
                                                                  shared_store: ArtifactStore) -> None:
    body = post(shared_live, {"inputs": TEXT, "explain": "occlusion"}).json()
    [prediction] = body["predictions"]
    assert prediction["explainer"] == "occlusion"
    predictor = Predictor.load(shared_store.model_dir("tiny-a"))
    [encoding] = predictor.encode([TEXT])
    base = softmax(predictor.run([encoding])["logits"])[0]
    c = int(base.argmax())
    assert prediction["label"] == predictor.labels[c]
    groups = words_of(encoding)
    assert len(groups) == len(prediction["words"])
    for word, group in zip(prediction["words"], groups, strict=True):
        after = softmax(predictor.run([deleted(encoding, group)])["logits"])[0]
        assert word["occlusion"] == pytest.approx(base[c] - after[c], abs=1e-5)
        assert word["attention"] is not None  # the SSA attention stays beside it, for comparison
    pieces = sum(t["occlusion"] for t in prediction["tokens"])
    assert pieces == pytest.approx(sum(w["occlusion"] for w in prediction["words"]), abs=1e-4)


def test_attention_is_the_default_explainer(shared_live: LiveServer) -> None:
    [prediction] = post(shared_live, {"inputs": TEXT}).json()["predictions"]
    assert prediction["explainer"] == "attention"
    assert all("occlusion" not in span or span["occlusion"] is None for span in prediction["words"])


def test_too_many_words_for_occlusion_is_422_naming_the_input(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tests.service.conftest import two_model_store

    store = two_model_store(tmp_path / "home", tiny_model_dir)
    with LiveServer(create_app(make_settings(store.root, occlusion_max_words=5))) as live:
        live.wait_ready("tiny-a")
        ok = post(live, {"inputs": ["Dull and slow.", TEXT], "explain": "attention"})
        assert ok.status_code == 200
        error = assert_error(post(live, {"inputs": ["Dull and slow.", TEXT], "explain": "occlusion"}), 422,
                             "validation_error", "inputs[1]")
        assert error["detail"][0]["message"].startswith("8 words, more than the 5")
        assert post(live, {"inputs": TEXT, "explain": "shap"}).status_code == 422


def test_lane_refuses_beyond_its_bound_and_frees_its_slot() -> None:
    async def scenario() -> tuple[Any, ...]:
        lane = OcclusionLane(limit=1, retry_after_s=2)
        release = threading.Event()
        first = asyncio.ensure_future(lane.run(lambda: release.wait(5) and "first"))
        await asyncio.sleep(0.05)
        with pytest.raises(OcclusionBusy) as busy:
            await lane.run(lambda: "second")
        release.set()
        done = await first
        after = await lane.run(lambda: "third")
        lane.shutdown()
        return busy.value.retry_after_s, done, after, lane.running

    assert asyncio.run(scenario()) == (2, "first", "third", 0)


def test_each_occlusion_run_first_calls_the_hook_and_results_do_not_change(tiny_model_dir: Path) -> None:
    predictor = Predictor.load(tiny_model_dir, provider="cpu")
    text = "a quiet, patient film that rewards the attention it asks for"
    calls: list[int] = []
    hooked = predictor.predict([text], explain="occlusion", occlusion_batch=4,
                               before_occlusion_run=lambda: calls.append(1))
    plain = predictor.predict([text], explain="occlusion", occlusion_batch=4)
    copies = len(words_of(predictor.encode([text])[0]))
    assert copies // 4 <= len(calls) <= copies  # once per run of at most 4 copies
    assert [w.occlusion for w in hooked[0].words or []] == [w.occlusion for w in plain[0].words or []]
