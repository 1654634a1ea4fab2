"""The training job's spec (the `config` a client submits, stored with the job) and the one rule that turns a spec
into ssa_core's `ModelConfig` / `TrainConfig`, used by the API (to refuse bad jobs early) and by the worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ssa_core.config import MODEL_DEFAULTS as M
from ssa_core.config import RANGES, ModelConfig, TrainConfig
from ssa_core.config import TRAIN_DEFAULTS as T
from ssa_core.errors import ConfigError, InvalidId
from ssa_core.recipes import DEFAULT_RECIPE, resolve
from ssa_core.runtime.artifacts import validate_id
from ssa_core.vocabulary import (
    RECIPE_NAMES,
    REGRESSION_METRICS,
    AttentionScores,
    DistractorSources,
    LabelMode,
    Method,
    MetricName,
    Quantize,
    RecipeName,
    Task,
)

Deploy = Literal["never", "if_better", "always"]
NEVER: Final = "never"
IF_BETTER: Final = "if_better"
ALWAYS: Final = "always"
DEFAULT_BASE_MODEL: Final = "minilm"


def checked_model_id(value: str | None) -> str | None:
    """A job's `model_id` as pydantic validates it: None, or a safe store id (ValueError with the reason)."""
    if value is not None:
        try:
            validate_id(value)
        except InvalidId as exc:
            raise ValueError(str(exc)) from None
    return value


def _range(name: str) -> annotated_types.Interval:
    """The bounds (ge / gt / le / lt) of config field `name`, from ssa_core.config.RANGES, as pydantic reads them
    from a field's Annotated metadata: the spec refuses what the config would, before the config is built."""
    return annotated_types.Interval(**RANGES[name].pydantic_bounds())


class TrainJobSpec(BaseModel):
    """Training job settings. Field names follow ssa_core's ModelConfig / TrainConfig. Strict: a client's
    `"iterations": "2"` or `true` is refused naming the field, not coerced (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    recipe: RecipeName = Field(
        default=DEFAULT_RECIPE, description="named set of settings (docs/ROBUSTNESS.md): released (the released SSA "
        "code), graded (today's default) or robust (graded + distractor copies); settings given explicitly win")
    method: Method = M["method"]
    iterations: Annotated[int, _range("iterations")] = Field(
        default=T["iterations"], description="SSA iterations (the first is plain fine-tuning)"
    )
    lambda_tok: Annotated[float, _range("lambda_tok")] = Field(
        default=M["lambda_tok"], description="weight of the token loss"
    )
    tau: Annotated[float, _range("tau")] = Field(default=M["tau"], description="keep threshold on token importance")
    cls_weight: Annotated[float, _range("cls_weight")] = Field(
        default=M["cls_weight"], description="share of [CLS] in the sentence vector"
    )
    learning_rate: Annotated[float, _range("learning_rate")] = Field(default=T["learning_rate"])
    batch_size: Annotated[int, _range("batch_size")] = Field(default=T["batch_size"])
    max_length: Annotated[int, _range("max_length")] = Field(
        default=M["max_length"], description="tokens per input, longer inputs are cut"
    )
    seed: int = Field(default=T["seed"], ge=0, le=2**31 - 1)
    label_mode: LabelMode = Field(
        default=T["label_mode"], description="weak-label rule: graded (word-by-word probe, soft targets; default) "
        "or the released code's 0/1 rules keep, flip, contrast")
    distractor_share: Annotated[float, _range("distractor_share")] = Field(
        default=T["distractor_share"], description="share of rows that also train as a copy with an inserted span "
        "that does not bear on the label, from iteration 1 on (0: none; default: the recipe's)")
    distractor_sources: DistractorSources = Field(
        default=T["distractor_sources"], description="where the inserted spans come from: pool (off-topic clauses: "
        "the shipped pool, or the job's `distractors` file), spans (words of a row of another class) or both")
    attention_scores: AttentionScores = Field(
        default=M["attention_scores"], description="what the SSA layer softmaxes: unbounded token scores (default) "
        "or p_i over the kept set (the released code)")
    base_model: str = Field(
        default=DEFAULT_BASE_MODEL,
        min_length=1,
        max_length=100,
        description="a name from the server's allow-list (SSA_ALLOWED_BASE_MODELS)",
    )
    text_column: str | None = Field(
        default=None, min_length=1, max_length=200, description="default: text, else sentence1"
    )
    text_pair_column: str | None = Field(
        default=None, min_length=1, max_length=200, description="default: text_pair / sentence2 when present"
    )
    label_column: str = Field(default="label", min_length=1, max_length=200)
    task: Task | None = Field(
        default=None, description="default: inferred from the labels"
    )
    metric: MetricName | None = None
    dev_fraction: float = Field(default=0.1, gt=0.0, lt=0.5, description="dev share split off when no dev file")
    deploy: Deploy = Field(
        default=NEVER,
        description="make the new model the active one through the deploy gate: never; if_better (same task and "
        "labels as the active model, it loads, its attention is not uniform, and it scores higher than the active "
        "model on this job's dev set); always (same task and labels, and it loads)",
    )
    model_id: str | None = Field(default=None, description="id of the new model (default: generated)")
    quantize: Quantize = Field(
        default="none", description="int8: also write the model's int8 variant (dynamic quantization), kept only "
        "when it predicts fp32's label on at least int8_min_agreement of the dev set; otherwise the job still "
        "succeeds with fp32 alone and its result says why")
    int8_min_agreement: float = Field(default=0.99, gt=0.0, le=1.0,
                                      description="quantize int8: the dev-set agreement with fp32 it must reach")

    @field_validator("model_id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return checked_model_id(value)

    @model_validator(mode="before")
    @classmethod
    def _recipe_values(cls, data: Any) -> Any:
        """The recipe's values for the settings a client did not give (an unknown recipe is left to the field's own
        check)."""
        if not isinstance(data, Mapping) or data.get("recipe", DEFAULT_RECIPE) not in RECIPE_NAMES:
            return data
        model_values, train_values = resolve(str(data.get("recipe", DEFAULT_RECIPE)),
                                             {name: data.get(name) for name in MODEL_FIELDS},
                                             {name: data.get(name) for name in TRAIN_FIELDS})
        filled = {k: v for k, v in {**model_values, **train_values}.items() if k in cls.model_fields and k not in data}
        return {**filled, **data}

    @classmethod
    def from_record(cls, stored: Mapping[str, Any]) -> TrainJobSpec:
        """A spec read back from a job record: keys this version does not know are dropped, not refused; a record
        from before recipes existed trained with the then-default settings, the `graded` recipe."""
        known = {key: value for key, value in stored.items() if key in cls.model_fields}
        return cls.model_validate({"recipe": "graded", **known}, strict=False)


# How a spec's fields reach the configs: each names a ModelConfig field, a TrainConfig field, or is the job's own (read
# by the API and the worker, never by ssa_core). tests/jobs/test_spec_mapping.py checks that the three cover the spec
# and that every mapped name is a field of its config, so a renamed field fails a test instead of being dropped.
MODEL_FIELDS: Final = ("method", "lambda_tok", "tau", "cls_weight", "max_length", "attention_scores")
TRAIN_FIELDS: Final = ("iterations", "learning_rate", "batch_size", "seed", "label_mode", "metric", "distractor_share",
                       "distractor_sources")
# base_model is the allow-listed name (the worker resolves it to a folder), task is resolved against the data; both
# reach ModelConfig through build_configs' own arguments. recipe supplies the settings the spec does not hold
# (build_configs resolves it: ssa_core.recipes).
JOB_ONLY_FIELDS: Final = ("recipe", "base_model", "task", "text_column", "text_pair_column", "label_column",
                          "dev_fraction", "deploy", "model_id", "quantize", "int8_min_agreement")


def build_configs(spec: TrainJobSpec, *, base_model: str, labels: Sequence[str],
                  task: Task) -> tuple[ModelConfig, TrainConfig]:
    """The configs a job trains with: the spec's fields, the base model's folder (or, in the API, its allow-listed
    name) and the labels and task of its data. Raises ConfigError naming the field."""
    model_values, train_values = resolve(spec.recipe, {name: getattr(spec, name) for name in MODEL_FIELDS},
                                         {name: getattr(spec, name) for name in TRAIN_FIELDS})
    model_cfg = ModelConfig(**model_values, base_model=base_model, labels=tuple(labels), task=task)
    train_cfg = TrainConfig(**train_values)
    if spec.metric is not None and (spec.metric in REGRESSION_METRICS) != (task == "regression"):
        raise ConfigError(f"{spec.metric!r} does not fit a {task} task", field="metric")
    return model_cfg, train_cfg
