"""Distractor copies in SSA training, the robustness report and the named recipes (real 2-layer MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.datasets import Dataset
from ssa_core.data.distractors import Distractor, DistractorPool
from ssa_core.errors import ConfigError
from ssa_core.model.ssa_model import IGNORE_INDEX, SSAOutput
from ssa_core.model.tokenize import encode_examples, load_tokenizer
from ssa_core.recipes import DEFAULT_RECIPE, RECIPES, recipe, resolve
from ssa_core.train.distraction import CopyMaker, distraction_loss, spans_from_rows
from ssa_core.train.trainer import fingerprint

CLAUSE = "The parking garage downtown was a total nightmare"


def one_clause_pool() -> DistractorPool:
    return DistractorPool("test", "training", "test", "CC0", ("parking",), (Distractor(CLAUSE, "parking"),))


def test_copies_carry_zero_targets_on_the_inserted_clause(tiny_encoder_dir: Path, movie_train: Dataset) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    encoded = encode_examples(tokenizer, movie_train.examples[:12], 128)
    items = [(e, [float(IGNORE_INDEX)] * len(e)) for e in encoded]
    for e, labels in items:
        for p in e.positions:
            labels[p.index] = float(p.word + 1)  # a target that says which original word it came from
    cfg = TrainConfig(distractor_share=1.0, distractor_sources="pool")
    copies = CopyMaker(tokenizer, cfg, 128, one_clause_pool()).make(items, np.random.default_rng(0))
    assert len(copies) == 12
    assert {c.encoded.example.text.find("arking garage") >= 0 for c in copies} == {True}
    for copy in copies:
        original, labels = items[copy.original]
        inserted_ids = [copy.encoded.input_ids[i] for i, flag in enumerate(copy.inserted) if flag]
        assert tokenizer.decode(inserted_ids).lower().strip(" .,") == CLAUSE.lower()
        assert all(copy.token_labels[i] == 0.0 for i, flag in enumerate(copy.inserted) if flag)
        kept = [copy.token_labels[i] for i, flag in enumerate(copy.inserted)
                if not flag and copy.token_labels[i] > 0]
        # every original word's target arrives once, in order
        assert kept == [labels[p.index] for p in original.positions]
        assert copy.encoded.example.label == original.example.label


def test_span_sources_take_words_of_another_class(tiny_encoder_dir: Path, movie_train: Dataset) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    rows = encode_examples(tokenizer, movie_train.examples[:20], 128)
    rng = np.random.default_rng(1)
    for index in range(len(rows)):
        span = spans_from_rows(rows, index, rng)
        assert span is not None and 1 <= len(span.split()) <= 8
        sources = [r for r in rows if span in r.example.text]
        assert any(str(r.example.label) != str(rows[index].example.label) for r in sources)


def test_distraction_loss_is_the_attention_on_inserted_pieces() -> None:
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    attention = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    output = SSAOutput(logits, None, attention, attention)
    inserted = torch.tensor([[False, False, False], [False, True, True], [True, True, False]])
    same = distraction_loss(output, torch.tensor([0]), torch.tensor([1]), inserted, regression=False)
    assert same.consistency.item() == pytest.approx(0.0, abs=1e-7)
    assert same.penalty.item() == pytest.approx(0.8)
    flipped = distraction_loss(output, torch.tensor([0]), torch.tensor([2]), inserted, regression=False)
    assert flipped.consistency.item() > 1.0
    assert flipped.penalty.item() == pytest.approx(0.7)


def test_share_zero_keeps_the_fingerprint_of_runs_written_before(tiny_encoder_dir: Path) -> None:
    model_cfg = ModelConfig(base_model=str(tiny_encoder_dir), labels=("a", "b"))
    plain = TrainConfig()
    before = {k: v for k, v in plain.to_dict().items()
              if k not in ("distractor_share", "distractor_sources", "consistency_weight", "distractor_penalty",
                           "robustness_rows")}
    assert plain.training_dict() == before
    assert fingerprint(model_cfg, TrainConfig(robustness_rows=0), []) == fingerprint(model_cfg, plain, [])
    assert fingerprint(model_cfg, TrainConfig(distractor_share=0.5), []) != fingerprint(model_cfg, plain, [])


def test_training_with_copies_records_them_and_reports_robustness(
    tiny_encoder_dir: Path, movie_train: Dataset, movie_dev: Dataset, tmp_path: Path
) -> None:
    from ssa_core.train.pipeline import train_model

    model_cfg = ModelConfig(base_model=str(tiny_encoder_dir), max_length=64, labels=movie_train.labels,
                            cls_weight=0.0)
    train_cfg = TrainConfig(iterations=2, batch_size=16, learning_rate=1e-4, seed=3, distractor_share=0.5,
                            robustness_rows=16)
    result = train_model(movie_train, movie_dev, model_cfg, train_cfg, tmp_path / "m", device="cpu")
    first, second = result.metrics.iterations
    assert first.distractor_copies is None and first.consistency_loss is None
    assert second.distractor_copies == 32
    assert second.consistency_loss is not None and second.consistency_loss >= 0
    assert second.distractor_attention is not None and 0 <= second.distractor_attention <= 1
    report = json.loads((tmp_path / "m" / "metrics.json").read_text())["robustness"]
    assert result.metrics.robustness is not None and result.metrics.robustness.to_dict() == report
    for key in ("offtopic", "fragments"):
        scores = report[key]
        assert scores["rows"] == 16
        assert 0 <= scores["misleading_accuracy"] <= 1 and 0 <= scores["flip_rate"] <= 1
    # both measurements score the same 16 clean rows with the same model
    assert report["offtopic"]["clean_accuracy"] == report["fragments"]["clean_accuracy"]
    assert report["pool"] == "offtopic-report" and "opposite polarity" in report["note"]
    card = (tmp_path / "m" / "README.md").read_text()
    assert "## Robustness to misleading spans" in card and "off-topic clause" in card


def test_regression_spans_are_refused(tiny_encoder_dir: Path) -> None:
    from ssa_core.train.pipeline import distractor_copies

    tokenizer = load_tokenizer(tiny_encoder_dir)
    model_cfg = ModelConfig(base_model=str(tiny_encoder_dir), task="regression")
    with pytest.raises(ConfigError, match="distractor_sources"):
        distractor_copies(tokenizer, model_cfg, TrainConfig(distractor_share=1.0), None)
    assert distractor_copies(tokenizer, model_cfg, TrainConfig(), None) is None


def test_recipes_explicit_settings_win_and_baseline_makes_no_copies() -> None:
    model, train = resolve("robust", {"method": "hybrid", "cls_weight": None}, {"distractor_share": None})
    assert model["cls_weight"] == 0.0 and train["distractor_share"] == 1.0
    model, train = resolve("robust", {"method": "hybrid", "cls_weight": 0.25}, {"distractor_share": 0.5})
    assert model["cls_weight"] == 0.25 and train["distractor_share"] == 0.5
    _, train = resolve("robust", {"method": "baseline"}, {})
    assert "distractor_share" not in train
    _, train = resolve("robust", {"method": "baseline"}, {"distractor_share": 1.0, "consistency_weight": 0.0})
    assert train["distractor_share"] == 1.0
    model, train = resolve("released", {}, {})
    assert (model["lambda_tok"], model["attention_scores"], train["label_mode"]) == (0.3, "probability", "keep")
    assert RECIPES[DEFAULT_RECIPE].model == {} and RECIPES[DEFAULT_RECIPE].train == {}
    for name in RECIPES:  # every recipe builds valid configs
        m, t = resolve(name, {}, {})
        ModelConfig(base_model="x", labels=("a", "b"), **m)
        TrainConfig(**t)
    with pytest.raises(ConfigError, match="recipe"):
        recipe("fast")
