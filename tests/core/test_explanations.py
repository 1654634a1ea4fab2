"""Explanation metrics: selectivity by hand, ERASER faithfulness and occlusion against one-at-a-time forward passes,
and the scores a trained model carries in metrics.json and its card."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ssa_core.data.datasets import Dataset
from ssa_core.export.folder import load_trained
from ssa_core.model.tokenize import encode_examples
from ssa_core.runtime.modelmeta import read_card
from ssa_core.train.explanations import (
    FRACTIONS,
    faithfulness,
    occlusion_weights,
    random_rankings,
    ranking,
    selectivity,
    served_attention,
    top_count,
    without,
)
from tests.core.conftest import TrainedRun
from tests.core.helpers import single_logits

CPU = torch.device("cpu")


def test_selectivity_of_uniform_and_peaked_weights() -> None:
    uniform = selectivity([np.full(10, 0.1), np.full(5, 0.2)])
    assert uniform.entropy == pytest.approx(1.0)
    assert uniform.top20_share == pytest.approx(0.2)
    peaked = selectivity([np.array([0.0, 1.0, 0.0, 0.0, 0.0])])
    assert peaked.entropy == pytest.approx(0.0) and peaked.top20_share == pytest.approx(1.0)
    half = selectivity([np.array([0.5, 0.5, 0.0, 0.0])])
    assert half.entropy == pytest.approx(math.log(2) / math.log(4))
    assert selectivity([np.array([1.0])]).entropy == 1.0  # a one-token sentence tells nothing: left out


def test_top_count_covers_at_least_one_wordpiece() -> None:
    assert [top_count(n, 0.2) for n in (1, 3, 5, 10, 12)] == [1, 1, 1, 2, 2]
    assert top_count(4, 0.5) == 2 and top_count(3, 1.0) == 3


@pytest.fixture(scope="module")
def explained(trained_model_dir: Path, movie_dev: Dataset) -> tuple:
    model, tokenizer, meta = load_trained(trained_model_dir)
    encoded = encode_examples(tokenizer, movie_dev.examples[:6], int(meta["max_length"]))
    return model, tokenizer, encoded


def probability(model: torch.nn.Module, ids: list[int], types: list[int] | None, label: int) -> float:
    return float(torch.softmax(single_logits(model, ids, types), dim=-1)[label])


def test_faithfulness_matches_one_at_a_time_deletions(explained: tuple) -> None:
    model, tokenizer, encoded = explained
    rankings = random_rankings(encoded, seed=3)
    got = faithfulness(model, encoded, rankings, tokenizer.pad_token_id, CPU)
    for f in FRACTIONS:
        comp, suff = [], []
        for e, order in zip(encoded, rankings, strict=True):
            positions = np.asarray([p.index for p in e.positions])
            k = top_count(len(positions), f)
            c = int(single_logits(model, e.input_ids, e.token_type_ids).argmax())
            base = probability(model, e.input_ids, e.token_type_ids, c)
            comp.append(base - probability(model, *without(e, set(positions[order[:k]].tolist())), c))
            suff.append(base - probability(model, *without(e, set(positions[order[k:]].tolist())), c))
        assert got.comprehensiveness[str(f)] == pytest.approx(np.mean(comp), abs=1e-5)
        assert got.sufficiency[str(f)] == pytest.approx(np.mean(suff), abs=1e-5)
    assert got.aopc != 0.0


def test_occlusion_weight_is_the_drop_when_the_word_is_deleted(explained: tuple) -> None:
    model, tokenizer, encoded = explained
    weights = occlusion_weights(model, encoded[:3], tokenizer.pad_token_id, CPU)
    for e, w in zip(encoded[:3], weights, strict=True):
        c = int(single_logits(model, e.input_ids, e.token_type_ids).argmax())
        base = probability(model, e.input_ids, e.token_type_ids, c)
        for k, p in enumerate(e.positions):
            word = {q.index for q in e.positions if (q.segment, q.word) == (p.segment, p.word)}
            assert w[k] == pytest.approx(base - probability(model, *without(e, word), c), abs=1e-5)


def test_served_attention_is_the_forward_pass_attention(explained: tuple) -> None:
    model, tokenizer, encoded = explained
    weights = served_attention(model, encoded, tokenizer.pad_token_id, CPU)
    for e, w in zip(encoded, weights, strict=True):
        with torch.no_grad():
            ids = torch.tensor([e.input_ids])
            attention = model(ids, torch.ones_like(ids)).attention[0]
        np.testing.assert_allclose(w, attention[[p.index for p in e.positions]].numpy(), atol=1e-6)
        assert w.sum() == pytest.approx(1.0, abs=1e-5)
    order = ranking(np.array([0.1, 0.5, 0.5, 0.2]))
    assert order.tolist() == [1, 2, 3, 0]


def test_trained_model_carries_its_explanation_scores(trained_run: TrainedRun) -> None:
    metrics = json.loads((trained_run.out_dir / "metrics.json").read_text())
    scores = metrics["explanations"]
    assert scores["sentences"] == len(trained_run.dev.examples)
    assert 0.0 < scores["entropy"] <= 1.0 and 0.2 <= scores["top20_share"] <= 1.0
    for key in ("comprehensiveness_20", "sufficiency_20", "random_comprehensiveness_20"):
        assert -1.0 <= scores[key] <= 1.0
    card = read_card(trained_run.out_dir)
    assert card is not None and "## Explanation quality" in card and f"{scores['entropy']:.3f}" in card
