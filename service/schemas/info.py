"""Bodies of the TEI-style endpoints: GET /info and POST /tokenize (text-embeddings-inference's shapes, where they
apply to a classifier)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.inference.request import inputs_type


class Limits(BaseModel):
    """This deployment's request limits (the SSA_* settings)."""

    max_client_batch_size: int = Field(description="Most inputs in one /predict or /tokenize request",
                                       examples=[64])
    max_input_chars: int = Field(description="Most characters in one input text", examples=[10000])
    max_body_bytes: int = Field(description="Largest request body (except dataset uploads)", examples=[1048576])
    max_upload_bytes: int = Field(description="Largest dataset upload", examples=[52428800])
    max_batch_size: int = Field(description="Most inputs run through the model at once (micro-batching)",
                                examples=[32])
    max_queued_requests: int = Field(description="Most /predict requests waiting; beyond: 429", examples=[1024])
    request_timeout_s: float = Field(description="Deadline of a /predict request; beyond: 504", examples=[30.0])
    occlusion_max_words: int = Field(description="Most words per input that explain=occlusion explains",
                                     examples=[64])


class Build(BaseModel):
    version: str = Field(description="Version of the ssa-service package", examples=["0.1.0"])
    python: str = Field(examples=["3.11.7"])
    onnxruntime: str = Field(examples=["1.20.1"])


class Info(BaseModel):
    """The served model and this deployment (model fields are null until a model is loaded)."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str | None = Field(description="The served model", examples=["sentiment-minilm"])
    model_version: str | None = Field(description="Its version (digest of its ONNX graph)", examples=["3f2a9c1b7d40"])
    task: str | None = Field(description="classification or regression", examples=["classification"])
    method: str | None = Field(description="SSA variant: baseline, co, layer, hybrid", examples=["hybrid"])
    labels: list[str] | None = Field(description="Class names in output order (empty for regression)",
                                     examples=[["negative", "positive"]])
    pair: bool | None = Field(description="The model takes [text, text_pair] pairs", examples=[False])
    max_input_length: int | None = Field(description="Most tokens per input; longer inputs are cut (or refused "
                                         "with truncate: false)", examples=[128])
    provider: str | None = Field(description="ONNX Runtime execution provider", examples=["CPUExecutionProvider"])
    ready: bool = Field(description="A model is loaded and warmed up", examples=[True])
    limits: Limits
    build: Build


def tokenize_request_model(max_inputs: int, max_chars: int) -> type[BaseModel]:
    """The POST /tokenize body, with this deployment's limits in its schema (as for /predict)."""
    examples: list[Any] = [
        {"inputs": "A gorgeous, witty, seductive movie."},
        {"inputs": ["The plot is thin.", "The acting is superb."], "add_special_tokens": False},
    ]
    return create_model(
        "TokenizeRequest",
        __config__=ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": examples}),
        __doc__="One text, a list of texts, or a list of [text, text_pair] pairs, tokenized as the served model does.",
        inputs=(inputs_type(max_inputs, max_chars), Field()),
        add_special_tokens=(bool, Field(True, description="Include the model's special tokens ([CLS], [SEP], ...)")),
    )


class TokenOut(BaseModel):
    """One token: its id, its text as the tokenizer has it, and its character span in the input of `segment`."""

    id: int = Field(examples=[6429])
    text: str = Field(examples=["gorgeous"])
    special: bool = Field(description="A special token ([CLS], [SEP], ...): no span", examples=[False])
    start: int | None = Field(description="First character (null for special tokens)", examples=[2])
    stop: int | None = Field(description="One past the last character (null for special tokens)", examples=[10])
    segment: int = Field(description="0: the text, 1: the text pair", examples=[0])
