"""The job spec -> config mapping is explicit (jobs.spec's MODEL_FIELDS / TRAIN_FIELDS / JOB_ONLY_FIELDS): every
spec field is named by exactly one of them, every mapped name is a field of its config, and the spec's bounds are
the config's (ssa_core.config.RANGES)."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from jobs.spec import JOB_ONLY_FIELDS, MODEL_FIELDS, TRAIN_FIELDS, TrainJobSpec, build_configs
from ssa_core.config import RANGES, ModelConfig, TrainConfig
from ssa_core.errors import ConfigError

MODEL_NAMES = {f.name for f in dataclasses.fields(ModelConfig)}
TRAIN_NAMES = {f.name for f in dataclasses.fields(TrainConfig)}


def test_every_spec_field_is_mapped_once() -> None:
    named = [*MODEL_FIELDS, *TRAIN_FIELDS, *JOB_ONLY_FIELDS]
    assert len(named) == len(set(named)), "a field is named twice"
    assert set(named) == set(TrainJobSpec.model_fields)


def test_every_mapped_name_is_a_config_field() -> None:
    assert set(MODEL_FIELDS) <= MODEL_NAMES
    assert set(TRAIN_FIELDS) <= TRAIN_NAMES


def test_job_only_fields_are_not_config_fields_unless_resolved() -> None:
    # base_model (an allow-listed name, resolved to a folder) and task (resolved against the data) reach ModelConfig
    # through build_configs' arguments; the others are the job's own.
    resolved = {"base_model", "task"}
    assert resolved <= set(JOB_ONLY_FIELDS)
    assert not (set(JOB_ONLY_FIELDS) - resolved) & (MODEL_NAMES | TRAIN_NAMES)


def test_spec_values_reach_the_configs() -> None:
    spec = TrainJobSpec(method="co", iterations=2, lambda_tok=0.2, tau=0.4, cls_weight=0.3, learning_rate=1e-4,
                        batch_size=8, max_length=64, seed=7, label_mode="keep", attention_scores="probability",
                        metric="macro_f1")
    model_cfg, train_cfg = build_configs(spec, base_model="/models/x", labels=["a", "b"], task="classification")
    for name in MODEL_FIELDS:
        assert getattr(model_cfg, name) == getattr(spec, name), name
    for name in TRAIN_FIELDS:
        assert getattr(train_cfg, name) == getattr(spec, name), name
    assert (model_cfg.base_model, model_cfg.labels, model_cfg.task) == ("/models/x", ("a", "b"), "classification")


@pytest.mark.parametrize("name", [n for n in TrainJobSpec.model_fields if n in RANGES])
def test_spec_bounds_are_the_configs(name: str) -> None:
    interval = RANGES[name]
    metadata = TrainJobSpec.model_fields[name].metadata
    bounds = {key: getattr(m, key) for m in metadata for key in ("ge", "gt", "le", "lt")
              if getattr(m, key, None) is not None}
    assert bounds == interval.pydantic_bounds()
    if interval.hi is not None:
        outside = interval.hi if interval.hi_open else interval.hi + 1
        with pytest.raises(ValidationError):
            TrainJobSpec.model_validate({name: outside})
        cls = ModelConfig if name in MODEL_NAMES else TrainConfig
        values = {"base_model": "x", "labels": ("a", "b")} if cls is ModelConfig else {}
        with pytest.raises(ConfigError) as caught:
            cls(**{**values, name: outside})
        assert (caught.value.field, caught.value.reason) == (name, interval.message())


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lambda_tok", 1.0, "must be in [0, 1)"),
    ("cls_weight", 1.5, "must be in [0, 1]"),
    ("max_length", 4, "must be in [8, 4096]"),
    ("attention_temperature", 0.0, "must be in [0.01, 10]"),
    ("task", "ranking", "must be classification or regression"),
    ("pool_transform", "mean", "must be none or pooler"),
])
def test_model_config_messages(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ModelConfig(base_model="x", labels=("a", "b"), **{field: value})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == (field, message)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("iterations", 0, "must be in [1, 50]"),
    ("learning_rate", 0.0, "must be in (0, 1]"),
    ("mask_trigger", 1.0, "must be in (0, 1)"),
    ("regression_tolerance", 0.0, "must be positive"),
    ("probe_batch_tokens", 100, "must be at least 512"),
    ("schedule", "mix", "must be replace or augment"),
    ("share_balance", "x", "must be class or none"),
])
def test_train_config_messages(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{field: value})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == (field, message)


def test_a_recipe_fills_the_settings_not_given_and_explicit_ones_win() -> None:
    robust = TrainJobSpec.model_validate({"recipe": "robust"})
    assert (robust.cls_weight, robust.distractor_share, robust.distractor_sources) == (0.0, 1.0, "both")
    mine = TrainJobSpec.model_validate({"recipe": "robust", "cls_weight": 0.25, "distractor_share": 0.5})
    assert (mine.cls_weight, mine.distractor_share) == (0.25, 0.5)
    model_cfg, train_cfg = build_configs(mine, base_model="/m", labels=["a", "b"], task="classification")
    assert (model_cfg.cls_weight, train_cfg.distractor_share, train_cfg.consistency_weight) == (0.25, 0.5, 1.0)
    # settings the spec does not hold come from the recipe too
    released = TrainJobSpec.model_validate({"recipe": "released"})
    model_cfg, train_cfg = build_configs(released, base_model="/m", labels=["a", "b"], task="classification")
    assert (model_cfg.pool_transform, train_cfg.label_mode, train_cfg.share_balance) == ("none", "keep", "none")
    # plain fine-tuning makes no copies under a recipe unless asked
    baseline = TrainJobSpec.model_validate({"recipe": "robust", "method": "baseline"})
    assert baseline.distractor_share == 0.0
    assert TrainJobSpec.model_validate({"recipe": "robust", "method": "baseline",
                                        "distractor_share": 1.0}).distractor_share == 1.0


def test_the_default_recipe_changes_nothing_and_old_records_read_as_graded() -> None:
    assert TrainJobSpec() == TrainJobSpec.model_validate({"recipe": "graded"})
    old = TrainJobSpec.from_record({"method": "hybrid", "iterations": 2})
    assert old.recipe == "graded" and old.distractor_share == 0.0
    with pytest.raises(ValidationError, match="recipe"):
        TrainJobSpec.model_validate({"recipe": "fast"})
