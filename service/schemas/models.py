"""Request and response bodies of the inference and model endpoints (documented in OpenAPI with examples)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from service.inference.request import inputs_schema
from ssa_core.runtime.artifacts import ID_MAX_LENGTH, SAFE_ID_PATTERN
from ssa_core.vocabulary import Explainer, OnnxVariant

EXAMPLE_TEXT = "A gorgeous, witty, seductive movie."
EXPLAIN_CHOICE: Any = Explainer
VARIANT_CHOICE: Any = OnnxVariant


@functools.cache
def predict_request_model(max_inputs: int, max_chars: int) -> type[BaseModel]:
    """The POST /predict body, with this deployment's limits in its schema (maxItems, maxLength); one class per pair
    of limits (the route and service.http.fastpath validate with the same one).

    `inputs` is validated by service.inference.request.parse_inputs (errors name the exact element)."""
    examples: list[Any] = [
        {"inputs": EXAMPLE_TEXT},
        {"inputs": [EXAMPLE_TEXT, "Dull and far too long."], "return_tokens": False},
        {"inputs": ["The plot is thin.", "The acting is superb."], "truncate": False, "return_words": False},
        {"inputs": EXAMPLE_TEXT, "explain": "occlusion"},
        {"inputs": EXAMPLE_TEXT, "variant": "int8"},
    ]
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": examples}),
        __doc__="One text, a list of texts, or a list of [text, text_pair] pairs, and what to return.",
        inputs=(Annotated[Any, WithJsonSchema(inputs_schema(max_inputs, max_chars))], Field()),
        truncate=(bool, Field(True, description="Cut inputs longer than the model's max_length (and say so); "
                              "false: such an input is refused with 422 naming its index.")),
        return_tokens=(bool, Field(True, description="Include per-wordpiece spans and SSA scores.")),
        return_words=(bool, Field(True, description="Include per-word spans and SSA scores.")),
        explain=(EXPLAIN_CHOICE, Field(
            "attention", description="attention (default, free): the SSA weights that pooled the prediction. "
            "occlusion: also leave-one-word-out occlusion, a faithful reference to check the attention against (one "
            "extra model run per word; at most SSA_OCCLUSION_MAX_WORDS words per input, else 422; at most "
            "SSA_OCCLUSION_CONCURRENCY such requests at once, else 429).")),
        model=(str | None, Field(None, pattern=SAFE_ID_PATTERN, max_length=ID_MAX_LENGTH,
                                 description="A stored model to answer instead of the deployed one (to compare "
                                 "models; loaded on first use): 404 if unknown. Omit for the deployed model.")),
        variant=(VARIANT_CHOICE | None, Field(
            None, description="The model's ONNX variant to answer with: fp32, or int8 / fp16 where the model has one "
            "(`ssa export --quantize int8|fp16`; GET /models/{id} lists them with their measured agreement), else 422. "
            "Omit for the deployment's default (SSA_ONNX_VARIANT).")),
    )


class SpanOut(BaseModel):
    """A wordpiece or word: character span into the input of `segment` and its SSA scores."""

    text: str = Field(examples=["gorgeous"])
    start: int = Field(examples=[2])
    end: int = Field(examples=[10])
    segment: int = Field(description="0: the text, 1: the text pair", examples=[0])
    attention: float | None = Field(description="SSA attention weight (null for methods without it)",
                                    examples=[0.21])
    importance: float | None = Field(description="token importance p_i (null for the baseline)", examples=[0.87])
    occlusion: float | None = Field(
        default=None, description="explain=occlusion: the drop of the predicted class's probability when the word is "
        "deleted (a word's wordpieces share it evenly); null otherwise", examples=[0.12])


class PredictionOut(BaseModel):
    label: str | float = Field(description="Predicted class (or value, for regression)", examples=["positive"])
    score: float = Field(description="Probability of the predicted class (the value, for regression)",
                         examples=[0.93])
    scores: dict[str, float] = Field(description="Probability of every class", examples=[{"negative": 0.07,
                                                                                         "positive": 0.93}])
    truncated: bool = Field(description="The input was cut to the model's max_length", examples=[False])
    explainer: Explainer = Field(
        default="attention", description="What produced the per-token weights: attention only, or attention and "
        "occlusion (the `occlusion` field of each token and word)", examples=["attention"])
    tokens: list[SpanOut] | None = Field(description="Per-wordpiece spans (null unless return_tokens)")
    words: list[SpanOut] | None = Field(description="Per-word spans (null unless return_words)")


class PredictResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: str = Field(examples=["sentiment-minilm"])
    model_version: str = Field(examples=["3f2a9c1b7d40"])
    model_variant: OnnxVariant = Field(default="fp32", description="The ONNX variant that answered",
                                                   examples=["fp32"])
    predictions: list[PredictionOut] = Field(description="One per input, in input order")


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
