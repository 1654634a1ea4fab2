"""Unit tests: settings from the environment, input parsing, error formatting, API-key checks, the serve command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.auth import check_api_key
from service.cli import register
from service.errormap import to_api_error
from service.errors import ApiError, InvalidField, field_path
from service.inference.request import check_kinds, inputs_schema, parse_inputs
from service.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def test_settings_come_from_ssa_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSA_HOME", str(tmp_path))
    monkeypatch.setenv("SSA_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("SSA_API_KEY", "s3cret")
    monkeypatch.setenv("SSA_READS_REQUIRE_KEY", "true")
    monkeypatch.setenv("SSA_ALLOWED_BASE_MODELS", "minilm, big=/models/big")
    monkeypatch.setenv("MAX_BATCH_SIZE", "99")  # no prefix: ignored
    settings = Settings()
    assert settings.home == tmp_path and settings.max_batch_size == 8 and settings.reads_require_key
    assert settings.api_key_value() == "s3cret" and "s3cret" not in repr(settings)
    assert settings.base_models == {"minilm": None, "big": "/models/big"}


@pytest.mark.parametrize(("name", "value"), [("SSA_MAX_BATCH_SIZE", "0"), ("SSA_PROVIDER", "tpu"),
                                             ("SSA_MAX_WAIT_MS", "-1"), ("SSA_PORT", "http"),
                                             ("SSA_INFERENCE_WORKERS", "0"), ("SSA_SIDE_MODELS", "-1"),
                                             ("SSA_OVERLAP_THREADS", "-1")])
def test_bad_settings_are_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("SSA_").lower()):
        Settings()


@pytest.mark.parametrize(("overrides", "expected"), [({}, 0), ({"overlap_threads": 1}, 1)])
def test_overlap_session_threads(tmp_path: Path, overrides: dict[str, Any], expected: int) -> None:
    """No overlap session by default (0: it costs a second session's memory, and serving.md and serving-loaded.md
    found its lower single-request latency on a quiet machine offset by higher latency on a loaded one)."""
    assert Settings(home=tmp_path, **overrides).overlap_threads == expected


def test_every_setting_is_described_and_documented() -> None:
    documented = set(re.findall(r"^\| `?(SSA_[A-Z_]+)`? \|", DOCS.read_text(), flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"SSA_{name.upper()}" in documented, f"SSA_{name.upper()} missing from {DOCS.name}"


@pytest.mark.parametrize(("loc", "expected"), [
    (("body", "inputs", 2, 1), "inputs[2][1]"), (("path", "model_id"), "model_id"), (("body",), "body"),
    (("query", "limit"), "limit"), (("body", "config", "lr"), "config.lr")])
def test_field_paths(loc: tuple[Any, ...], expected: str) -> None:
    assert field_path(loc) == expected


def field_of(error: InvalidField) -> str:
    mapped = to_api_error(error)
    assert mapped is not None and mapped.status == 422 and mapped.detail[0]["field"] == error.field
    return error.field


@pytest.mark.parametrize(("value", "field"), [
    ("   ", "inputs"), ([], "inputs"), (["a", ""], "inputs[1]"), (["a", ["b", " "]], "inputs[1][1]"),
    (["a", ["b"]], "inputs[1]"), ([1], "inputs[0]"), ({"a": 1}, "inputs"), (["x" * 11], "inputs[0]"),
    (["a"] * 4, "inputs"), ("\x1c\x1d", "inputs"), ("\u00a0\u2003", "inputs")])
def test_parse_inputs_names_the_element(value: Any, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_inputs(value, max_inputs=3, max_chars=10)
    assert field_of(caught.value) == field


def test_parse_inputs_accepts_texts_and_pairs() -> None:
    assert parse_inputs(" x ", max_inputs=3, max_chars=10) == [" x "]
    assert parse_inputs(["a", ["b", "c"]], max_inputs=3, max_chars=10) == ["a", ("b", "c")]
    with pytest.raises(InvalidField) as caught:
        check_kinds(["a", ("b", "c")], single=False, pair_model=False, model_id="m")
    assert field_of(caught.value) == "inputs[1]"
    with pytest.raises(InvalidField, match="pairs"):
        check_kinds(["a"], single=True, pair_model=True, model_id="m")


def test_inputs_schema_carries_the_limits() -> None:
    schema = inputs_schema(5, 100)
    text, many = schema["anyOf"]
    assert text["maxLength"] == 100 and text["pattern"] == r"\S"
    assert many["maxItems"] == 5 and many["items"]["anyOf"][1]["maxItems"] == 2


@pytest.mark.parametrize(("settings", "given", "allowed"), [
    ({"api_key": "k"}, "k", True), ({"api_key": "k"}, "K", False), ({"api_key": "k"}, None, False),
    ({"api_key": "k"}, "k ", False), ({"api_key": None}, "anything", False),
    ({"api_key": None, "auth_disabled": True}, None, True),
    ({"api_key": "clé"}, "clé".encode().decode("latin-1"), True), ({"api_key": "clé"}, "clé", False)])
def test_api_key_check(settings: dict[str, Any], given: str | None, allowed: bool) -> None:
    s = Settings(**settings)
    if allowed:
        check_api_key(s, given)
    else:
        with pytest.raises(ApiError) as caught:
            check_api_key(s, given)
        assert caught.value.status == 401 and caught.value.headers == {"WWW-Authenticate": "X-API-Key"}


def test_serve_command_registers_its_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--host", "127.0.0.1", "--port", "9001", "--model", str(tmp_path)])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 9001, tmp_path)
    assert args.handler(args) == 2  # tmp_path holds no ssa.json: refused before starting a server


def test_the_typed_inputs_keep_their_first_problem_until_the_request_is_answered() -> None:
    from service.inference.request import predict_request_model

    body = predict_request_model(3, 10).model_validate({"inputs": ["a", ["b", " "]], "truncate": False})
    assert body.truncate is False and body.inputs.single is False and body.inputs.field(1) == "inputs[1]"
    with pytest.raises(InvalidField) as caught:
        body.inputs.items()
    assert caught.value.field == "inputs[1][1]"
    assert str(caught.value) == "inputs[1][1]: text is empty or only whitespace"
    single = predict_request_model(3, 10).model_validate({"inputs": " x "}).inputs
    assert single.items() == [" x "] and single.field(0) == "inputs"


def test_the_rendered_bytes_are_the_declared_response() -> None:
    """The renderer writes every field of PredictResponse, in its order, and nothing it does not declare."""
    import json

    from service.inference.response import PredictionOut, PredictResponse, SpanOut, renderer
    from ssa_core.data.textspans import Span
    from ssa_core.runtime.predictor import Prediction

    spans = [Span("a", 0, 1, 0, 0.1234567891, None), Span("b", 2, 3, 1, None, 0.5, occlusion=0.25)]
    predictions = [Prediction("pos", 0.91234567, {"neg": 0.0876543, "pos": 0.91234567}, spans, None, False),
                   Prediction(1.23456789, 1.23456789, {}, None, spans[:1], True, "occlusion")]
    body = renderer("m", "v1", "int8")(predictions)
    parsed = json.loads(body)
    assert parsed == PredictResponse.model_validate_json(body).model_dump(exclude_unset=True)
    assert list(parsed) == list(PredictResponse.model_fields)
    assert list(parsed["predictions"][0]) == list(PredictionOut.model_fields)
    assert list(parsed["predictions"][0]["tokens"][1]) == list(SpanOut.model_fields)
    assert "occlusion" not in parsed["predictions"][0]["tokens"][0]  # not required: left out while None
    assert parsed["predictions"][0]["tokens"][0]["attention"] == 0.123457
    assert parsed["predictions"][1]["label"] == 1.234568
