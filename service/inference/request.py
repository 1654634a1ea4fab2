"""The `inputs` of POST /predict: its JSON Schema and a validator whose errors name the exact element
(`inputs[3][1]: text is empty or only whitespace`)."""

from __future__ import annotations

from typing import Any

from service.errors import invalid_field
from ssa_core.runtime.predictor import Item

NON_BLANK = r"\S"  # JSON Schema patterns are unanchored: "contains a non-whitespace character"
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
        raise invalid_field(field, f"expected a string, got {json_type(value)}")
    if len(value) > max_chars:
        raise invalid_field(field, f"text has {len(value)} characters, the limit is {max_chars}")
    if not value.strip():
        raise invalid_field(field, "text is empty or only whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid_field(field, f"text is not valid Unicode (unpaired surrogate at character {exc.start})") from exc
    return value


def parse_item(field: str, value: Any, max_chars: int) -> Item:
    if isinstance(value, list):
        if len(value) != 2:
            raise invalid_field(field, f"a pair must have exactly 2 texts, got {len(value)}")
        return (check_text(f"{field}[0]", value[0], max_chars), check_text(f"{field}[1]", value[1], max_chars))
    if not isinstance(value, str):
        raise invalid_field(field, f"expected a text or a [text, text_pair] pair, got {json_type(value)}")
    return check_text(field, value, max_chars)


def parse_inputs(value: Any, *, max_inputs: int, max_chars: int) -> list[Item]:
    """The runtime items of a request's `inputs`; raises ApiError (422) naming the offending element."""
    if isinstance(value, str):
        return [check_text("inputs", value, max_chars)]
    if not isinstance(value, list):
        raise invalid_field("inputs", f"expected a text or a list of texts / pairs, got {json_type(value)}")
    if not value:
        raise invalid_field("inputs", "the list is empty")
    if len(value) > max_inputs:
        raise invalid_field("inputs", f"{len(value)} inputs, the limit is {max_inputs} per request")
    return [parse_item(f"inputs[{i}]", item, max_chars) for i, item in enumerate(value)]


def check_kinds(items: list[Item], single: bool, pair_model: bool, model_id: str) -> None:
    """Texts for a single-text model, pairs for a pair model."""
    for index, item in enumerate(items):
        if isinstance(item, tuple) != pair_model:
            expected = "[text, text_pair] pairs" if pair_model else "single texts, not pairs"
            raise invalid_field("inputs" if single else f"inputs[{index}]", f"model {model_id} takes {expected}")

