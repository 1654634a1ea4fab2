"""The POST /predict response: its models (documented in OpenAPI) and the renderer that writes a response body from
a batch's predictions (in the inference thread, off the event loop)."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ssa_core.runtime.predictor import Prediction
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


# ---- rendering: the bytes sent, derived from the models above ------------------------------------------------------
# A response is rendered with orjson from plain dicts (pydantic's own serialization would cost several times as much
# per span), but every key, its order, which keys are left out and how each value is written come from the declared
# models: a runtime object (Prediction, Span) is read field by field, by the model's field names, in its field order.
# A float is rounded to DIGITS places; a nested model list is rendered with that model's fields; a field whose
# default is None (SpanOut.occlusion) is left out while it is None. tests/service/test_units.py checks that the bytes
# validate as PredictResponse.

Dictify = Callable[[Any], dict[str, Any]]


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def _expression(annotation: Any, value: str, namespace: dict[str, Any]) -> str:
    """The Python expression that writes `value` (source text) of a field with this annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    union = origin in (Union, types.UnionType)
    if annotation is float:
        return f"round({value}, {DIGITS})"
    if union and set(args) == {float, type(None)}:
        return f"rounded({value})"
    if union and float in args:  # a class name or, for regression, a value
        return f"round({value}, {DIGITS}) if isinstance({value}, float) else {value}"
    if origin is dict and args[-1:] == (float,):
        return f"{{key: round(item, {DIGITS}) for key, item in {value}.items()}}"
    for arg in (annotation, *args):
        inner = typing.get_args(arg)
        if typing.get_origin(arg) is list and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            name = f"dictify_{inner[0].__name__}"
            namespace[name] = dictifier(inner[0])
            listed = f"[{name}(item) for item in {value}]"
            return f"None if {value} is None else {listed}" if type(None) in args else listed
    return value


def dictifier(model: type[BaseModel]) -> Dictify:
    """A function that writes an object with `model`'s fields (read as attributes) as a dict in `model`'s order.

    It is generated once per model as the dict literal one would write by hand (so that rendering costs what a
    hand-written one does): `{"text": obj.text, ..., "attention": rounded(obj.attention), ...}`; from the first
    field whose default is None on (SpanOut.occlusion), field by field, that one added only when it is not None."""
    namespace: dict[str, Any] = {"rounded": rounded}
    literal: list[str] = []
    statements: list[str] = []
    for name, field in model.model_fields.items():
        value = _expression(field.annotation, f"obj.{name}", namespace)
        if not field.is_required() and field.default is None:
            statements.append(f"    if obj.{name} is not None:\n        out[{name!r}] = {value}\n")
        elif statements:
            statements.append(f"    out[{name!r}] = {value}\n")
        else:
            literal.append(f"{name!r}: {value}")
    source = f"def dictify(obj):\n    out = {{{', '.join(literal)}}}\n{''.join(statements)}    return out\n"
    exec(compile(source, f"<{model.__name__} renderer>", "exec"), namespace)  # our own code, from the model
    dictify: Dictify = namespace["dictify"]
    return dictify


@dataclass(frozen=True)
class Answer:
    """What a PredictResponse is rendered from: the model that answered and its predictions."""

    model_id: str
    model_version: str
    model_variant: str
    predictions: list[Prediction]


response_dict: Dictify = dictifier(PredictResponse)


def renderer(model_id: str, version: str, variant: str) -> Callable[[list[Prediction]], bytes]:
    """Renders a PredictResponse body from predictions (called in the inference thread, off the event loop)."""

    def render(predictions: list[Prediction]) -> bytes:
        return orjson.dumps(response_dict(Answer(model_id, version, variant, predictions)))

    return render
