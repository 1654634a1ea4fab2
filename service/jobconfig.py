"""The `config` form field of POST /jobs/ssa-train: every field bounded, unknown fields refused."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.errors import ApiError, field_path
from ssa_core.artifacts import InvalidId, validate_id
from ssa_core.config import MODEL_DEFAULTS as M
from ssa_core.config import TRAIN_DEFAULTS as T

Deploy = Literal["never", "if_better", "always"]


class TrainJobConfig(BaseModel):
    """Training job settings. Field names follow ssa_core's ModelConfig / TrainConfig."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["baseline", "co", "layer", "hybrid"] = "hybrid"
    iterations: int = Field(
        default=T["iterations"], ge=1, le=50, description="SSA iterations (the first is plain fine-tuning)"
    )
    lambda_tok: float = Field(default=M["lambda_tok"], ge=0.0, lt=1.0, description="weight of the token loss")
    tau: float = Field(default=M["tau"], ge=0.0, lt=1.0, description="keep threshold on token importance")
    cls_weight: float = Field(
        default=M["cls_weight"], ge=0.0, le=1.0, description="share of [CLS] in the sentence vector"
    )
    learning_rate: float = Field(default=T["learning_rate"], gt=0.0, le=1.0)
    batch_size: int = Field(default=T["batch_size"], ge=1, le=4096)
    max_length: int = Field(
        default=M["max_length"], ge=8, le=4096, description="tokens per input, longer inputs are cut"
    )
    seed: int = Field(default=T["seed"], ge=0, le=2**31 - 1)
    label_mode: Literal["graded", "keep", "flip", "contrast"] = Field(
        default=T["label_mode"], description="weak-label rule: graded (word-by-word probe, soft targets; default) "
        "or the released code's 0/1 rules keep, flip, contrast")
    attention_scores: Literal["logit", "probability"] = Field(
        default=M["attention_scores"], description="what the SSA layer softmaxes: unbounded token scores (default) "
        "or p_i over the kept set (the released code)")
    base_model: str = Field(
        default="minilm",
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
    task: Literal["classification", "regression"] | None = Field(
        default=None, description="default: inferred from the labels"
    )
    metric: Literal["accuracy", "macro_f1", "mcc", "pearson", "spearman"] | None = None
    dev_fraction: float = Field(default=0.1, gt=0.0, lt=0.5, description="dev share split off when no dev file")
    deploy: Deploy = Field(
        default="never",
        description="make the new model the active one: never, if_better "
        "(its dev metric beats the active model's), always",
    )
    model_id: str | None = Field(default=None, description="id of the new model (default: generated)")

    @field_validator("model_id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_id(value)
            except InvalidId as exc:
                raise ValueError(str(exc)) from None
        return value


def parse_config(text: str | None) -> TrainJobConfig:
    """The config form field as a TrainJobConfig; ApiError 422 naming the field otherwise."""
    try:
        raw: Any = json.loads(text) if text and text.strip() else {}
    except json.JSONDecodeError as exc:
        raise config_error("config", f"not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(raw, dict):
        raise config_error("config", "must be a JSON object")
    try:
        return TrainJobConfig.model_validate(raw)
    except ValidationError as exc:
        detail = [{"field": "config." + field_path(("body", *e["loc"])), "message": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in detail[:5])
        raise ApiError(422, "validation_error", message, detail) from None


def config_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}])
