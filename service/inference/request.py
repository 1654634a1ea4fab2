"""The POST /predict request: its body model (`predict_request_model`, with this deployment's limits in its schema)
and its `inputs`: their JSON Schema and a validator whose errors name the exact element (`inputs[3][1]: text is empty
or only whitespace`)."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, PlainValidator, WithJsonSchema, create_model
from pydantic_core import CoreSchema, core_schema

from service.errors import InvalidField
from ssa_core.runtime.artifacts import ID_MAX_LENGTH, SAFE_ID_PATTERN
from ssa_core.runtime.predictor import Item
from ssa_core.vocabulary import Explainer, OnnxVariant

NON_BLANK = r"\S"  # JSON Schema patterns are unanchored: "contains a non-whitespace character"
EXAMPLE_TEXT = "A gorgeous, witty, seductive movie."
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def inputs_schema(max_inputs: int, max_chars: int, pairs: bool | None = None) -> dict[str, Any]:
    """One text, or 1..max_inputs items each a text or a [text, text_pair] pair. `pairs` narrows it to what one
    model takes: False, texts only (one, or a list); True, a list of pairs; None (no model known), either."""
    text = {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": NON_BLANK}
    pair = {"type": "array", "items": text, "minItems": 2, "maxItems": 2}
    limits = {"minItems": 1, "maxItems": max_inputs}
    chars = f"a text has 1 to {max_chars} characters, not only whitespace."
    if pairs is False:
        return {"anyOf": [text, {"type": "array", "items": text, **limits}], "title": "Inputs",
                "description": f"One text, or a list of 1 to {max_inputs} texts (the served model takes single "
                               f"texts); {chars}"}
    if pairs is True:
        return {"type": "array", "items": pair, **limits, "title": "Inputs",
                "description": f"A list of 1 to {max_inputs} [text, text_pair] pairs (the served model takes text "
                               f"pairs); {chars}"}
    many = {"type": "array", "items": {"anyOf": [text, pair]}, **limits}
    return {"anyOf": [text, many], "title": "Inputs",
            "description": f"One text, or a list of 1 to {max_inputs} texts and/or [text, text_pair] pairs; {chars}"}


def json_type(value: Any) -> str:
    return "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)


def check_text(field: str, value: Any, max_chars: int) -> str:
    """`value` when it is an acceptable text; else a 422 naming `field`."""
    if not isinstance(value, str):
        raise InvalidField(field, f"expected a string, got {json_type(value)}")
    if len(value) > max_chars:
        raise InvalidField(field, f"text has {len(value)} characters, the limit is {max_chars}")
    if not value.strip():
        raise InvalidField(field, "text is empty or only whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidField(field, f"text is not valid Unicode (unpaired surrogate at character {exc.start})") from exc
    return value


def parse_item(field: str, value: Any, max_chars: int) -> Item:
    if isinstance(value, list):
        if len(value) != 2:
            raise InvalidField(field, f"a pair must have exactly 2 texts, got {len(value)}")
        return (check_text(f"{field}[0]", value[0], max_chars), check_text(f"{field}[1]", value[1], max_chars))
    if not isinstance(value, str):
        raise InvalidField(field, f"expected a text or a [text, text_pair] pair, got {json_type(value)}")
    return check_text(field, value, max_chars)


def parse_inputs(value: Any, *, max_inputs: int, max_chars: int) -> list[Item]:
    """The runtime items of a request's `inputs`; raises InvalidField naming the offending element."""
    if isinstance(value, str):
        return [check_text("inputs", value, max_chars)]
    if not isinstance(value, list):
        raise InvalidField("inputs", f"expected a text or a list of texts / pairs, got {json_type(value)}")
    if not value:
        raise InvalidField("inputs", "the list is empty")
    if len(value) > max_inputs:
        raise InvalidField("inputs", f"{len(value)} inputs, the limit is {max_inputs} per request")
    return [parse_item(f"inputs[{i}]", item, max_chars) for i, item in enumerate(value)]


def check_kinds(items: list[Item], single: bool, pair_model: bool, model_id: str) -> None:
    """Texts for a single-text model, pairs for a pair model."""
    for index, item in enumerate(items):
        if isinstance(item, tuple) != pair_model:
            expected = "[text, text_pair] pairs" if pair_model else "single texts, not pairs"
            raise InvalidField("inputs" if single else f"inputs[{index}]", f"model {model_id} takes {expected}")


@dataclass(frozen=True)
class Inputs:
    """A request's `inputs`, typed at the boundary: the runtime items (each a text or a (text, text_pair) pair) and
    whether one bare text was sent (the request's errors then say `inputs`, not `inputs[0]`).

    An `inputs` that does not validate is kept as its first problem (an InvalidField naming the exact element) and
    raised by `items()` where the request is answered: after the checks of the model it names, as the API has always
    ordered them (no model served: 503 before any input error), so validating the body never fails on `inputs`."""

    single: bool
    parsed: tuple[Item, ...] = ()
    problem: InvalidField | None = None

    @classmethod
    def parse(cls, value: Any, max_inputs: int, max_chars: int) -> Inputs:
        single = isinstance(value, str)
        try:
            return cls(single, tuple(parse_inputs(value, max_inputs=max_inputs, max_chars=max_chars)))
        except InvalidField as problem:
            return cls(single, problem=problem)

    def items(self) -> list[Item]:
        """The runtime items; raises the InvalidField of inputs that did not validate."""
        if self.problem is not None:
            raise self.problem
        return list(self.parsed)

    def field(self, index: int) -> str:
        """The request field of input `index`: `inputs` for a bare text, else `inputs[index]`."""
        return "inputs" if self.single else f"inputs[{index}]"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Without limits (each deployment's PredictRequest bounds it: `inputs_type`)."""
        return core_schema.no_info_plain_validator_function(
            functools.partial(cls.parse, max_inputs=sys.maxsize, max_chars=sys.maxsize))


def inputs_type(max_inputs: int, max_chars: int) -> Any:
    """The pydantic type of `inputs` under these limits: validated into Inputs, documented by `inputs_schema`."""
    return Annotated[Inputs, PlainValidator(functools.partial(Inputs.parse, max_inputs=max_inputs,
                                                              max_chars=max_chars)),
                     WithJsonSchema(inputs_schema(max_inputs, max_chars))]


EXAMPLES: list[Any] = [
    {"inputs": EXAMPLE_TEXT},
    {"inputs": [EXAMPLE_TEXT, "Dull and far too long."], "return_tokens": False},
    {"inputs": ["The plot is thin.", "The acting is superb."], "truncate": False, "return_words": False},
    {"inputs": EXAMPLE_TEXT, "explain": "occlusion"},
    {"inputs": EXAMPLE_TEXT, "variant": "int8"},
]


class PredictRequest(BaseModel):
    """One text, a list of texts, or a list of [text, text_pair] pairs, and what to return."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": EXAMPLES})

    inputs: Inputs = Field()  # each deployment's limits: predict_request_model
    truncate: bool = Field(True, description="Cut inputs longer than the model's max_length (and say so); "
                           "false: such an input is refused with 422 naming its index.")
    return_tokens: bool = Field(True, description="Include per-wordpiece spans and SSA scores.")
    return_words: bool = Field(True, description="Include per-word spans and SSA scores.")
    explain: Explainer = Field(
        "attention", description="attention (default, free): the SSA weights that pooled the prediction. "
        "occlusion: also leave-one-word-out occlusion, a faithful reference to check the attention against (one "
        "extra model run per word; at most SSA_OCCLUSION_MAX_WORDS words per input, else 422; at most "
        "SSA_OCCLUSION_CONCURRENCY such requests at once, else 429).")
    model: str | None = Field(None, pattern=SAFE_ID_PATTERN, max_length=ID_MAX_LENGTH,
                              description="A stored model to answer instead of the deployed one (to compare "
                              "models; loaded on first use): 404 if unknown. Omit for the deployed model.")
    variant: OnnxVariant | None = Field(
        None, description="The model's ONNX variant to answer with: fp32, or int8 / fp16 where the model has one "
        "(`ssa export --quantize int8|fp16`; GET /models/{id} lists them with their measured agreement), else 422. "
        "Omit for the deployment's default (SSA_ONNX_VARIANT).")


@functools.cache
def predict_request_model(max_inputs: int, max_chars: int) -> type[PredictRequest]:
    """PredictRequest with this deployment's limits on `inputs` (in its schema: maxItems, maxLength); one class per
    pair of limits (the route and service.http.fastpath validate with the same one)."""
    return create_model("PredictRequest", __base__=PredictRequest, __doc__=PredictRequest.__doc__,
                        inputs=(inputs_type(max_inputs, max_chars), Field()))
