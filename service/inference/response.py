"""The POST /predict response: its models (documented in OpenAPI) and the renderer that writes a response body from
a batch's predictions (in the inference thread, off the event loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ssa_core.runtime.predictor import Prediction, Span
from ssa_core.vocabulary import Explainer, OnnxVariant

DIGITS = 6


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


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def span_dict(span: Span) -> dict[str, Any]:
    out = {"text": span.text, "start": span.start, "end": span.end, "segment": span.segment,
           "attention": rounded(span.attention), "importance": rounded(span.importance)}
    if span.occlusion is not None:
        out["occlusion"] = rounded(span.occlusion)
    return out


def prediction_dict(p: Prediction) -> dict[str, Any]:
    label = round(p.label, DIGITS) if isinstance(p.label, float) else p.label
    return {"label": label, "score": round(p.score, DIGITS),
            "scores": {name: round(value, DIGITS) for name, value in p.scores.items()},
            "truncated": p.truncated, "explainer": p.explainer,
            "tokens": None if p.tokens is None else [span_dict(s) for s in p.tokens],
            "words": None if p.words is None else [span_dict(s) for s in p.words]}


def renderer(model_id: str, version: str, variant: str) -> Callable[[list[Prediction]], bytes]:
    """Renders a response body from predictions (called in the inference thread, off the event loop)."""
    head = {"model_id": model_id, "model_version": version, "model_variant": variant}

    def render(predictions: list[Prediction]) -> bytes:
        return orjson.dumps({**head, "predictions": [prediction_dict(p) for p in predictions]})

    return render
