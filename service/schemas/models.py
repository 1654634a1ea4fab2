"""Request and response bodies of the model and health endpoints (documented in OpenAPI with examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ssa_core.vocabulary import OnnxVariant


class VariantOut(BaseModel):
    """An ONNX file that can serve the model: fp32 (model.onnx), or int8 / fp16 with the agreement it was checked at."""

    name: OnnxVariant = Field(examples=["int8"])
    file: str = Field(examples=["model.int8.onnx"])
    agreement: float | None = Field(default=None, description="int8: share of the check's inputs (the dev set) on "
                                    "which it predicted fp32's label", examples=[0.996])
    checked_inputs: int | None = Field(default=None, description="int8: inputs of that check", examples=[872])
    min_agreement: float | None = Field(default=None, description="int8: the agreement it had to reach",
                                        examples=[0.99])
    attention_max_abs_diff: float | None = Field(
        default=None, description="int8: largest difference of a token's attention to fp32's in that check",
        examples=[0.02])
    score_max_abs_diff: float | None = Field(
        default=None, description="fp16: largest difference of the predicted class's probability to fp32's in that "
        "check", examples=[0.0004])
    checked_on: str | None = Field(default=None, description="fp16: the ONNX Runtime provider that check ran on",
                                   examples=["CUDAExecutionProvider"])
    fp32_matmuls: int | None = Field(
        default=None, description="int8: MatMuls kept in fp32 so that it agreed enough (0: every one quantized)",
        examples=[3])


class ModelOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: str = Field(examples=["sentiment-minilm"])
    version: str = Field(examples=["3f2a9c1b7d40"])
    created_at: str | None = Field(examples=["2025-01-01T12:00:00+00:00"])
    method: str = Field(examples=["hybrid"])
    task: str = Field(examples=["classification"])
    labels: list[str] = Field(examples=[["negative", "positive"]])
    max_length: int = Field(examples=[128])
    pair: bool = Field(examples=[False])
    base_model: str | None = Field(examples=["minilm"])
    metric: str | None = Field(examples=["accuracy"])
    dev_metric: float | None = Field(examples=[0.86])
    metrics: dict[str, Any] | None = Field(description="metrics.json: best iteration, dev metrics, iterations")
    ssa: dict[str, float | str | None] = Field(
        default_factory=dict, description="SSA settings the model was trained with",
        examples=[{"lambda_tok": 0.3, "tau": 0.3, "cls_weight": 0.5, "attention_temperature": 1.0}])
    card: str | None = Field(default=None, description="The model card (markdown: README.md without its metadata "
                                  "block, or card.md of older folders), in GET /models/{id} only")
    variants: list[VariantOut] = Field(default_factory=list, description="Its ONNX variants: fp32 always, int8 "
                                       "/ fp16 where made; POST /predict may name one")
    active: bool = Field(description="The store's active model (active.json)")
    loaded: bool = Field(description="The model this process is serving")
    disk_bytes: int | None = Field(default=None, ge=0, description="Bytes of the model folder on disk (ONNX, "
                                   "weights, tokenizer, metadata)", examples=[91226112])


class ModelList(BaseModel):
    active: str | None = Field(description="Id of the active model, if any", examples=["sentiment-minilm"])
    models: list[ModelOut]


class DeployRequest(BaseModel):
    """Optional body of POST /models/{id}/deploy."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "force": 0 is refused, not read as false

    force: bool = Field(default=False, description="Deploy even when the model's task, label set or input kind "
                        "(texts / pairs) differ from the active model's (otherwise 409 model_mismatch)")


class DeployResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: str = Field(examples=["sentiment-minilm"])
    version: str = Field(examples=["3f2a9c1b7d40"])
    previous: str | None = Field(description="The model served before", examples=["sentiment-old"])
    provider: str = Field(examples=["CPUExecutionProvider"])
    load_seconds: float = Field(description="Load + warm-up time", examples=[0.8])
    forced: bool = Field(default=False, description="Deployed with force over a task / label set / input kind that "
                         "differs from the previously active model's")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    ready: bool
    reason: str | None = Field(description="Why not ready", examples=["no model yet"])
    model_id: str | None = Field(examples=["sentiment-minilm"])
    model_version: str | None = Field(examples=["3f2a9c1b7d40"])
    provider: str | None = Field(examples=["CPUExecutionProvider"])
    bootstrap: dict[str, Any] | None = Field(None, description="Progress of the first-run (bootstrap) training "
                                             "job, when one is running")
