"""What a client is told when a model cannot be loaded or warmed up: our own message, never ONNX Runtime's or the
tokenizer's raw text (which names server paths and internals). The raw error goes to the API's log."""

from __future__ import annotations

import logging

from ssa_core.runtime.predictor import ModelFolderError

log = logging.getLogger("ssa.serving")

# ONNX Runtime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state) by name -> what went wrong
ORT_ERRORS = {
    "NoSuchFile": "its ONNX file is missing",
    "InvalidProtobuf": "its ONNX file is not a valid ONNX model",
    "InvalidGraph": "its ONNX graph is invalid for this ONNX Runtime",
    "NotImplemented": "its ONNX graph uses an operator this ONNX Runtime does not implement",
    "InvalidArgument": "ONNX Runtime refused its inputs",
    "RuntimeException": "ONNX Runtime failed while running it",
    "EPFail": "the execution provider (GPU) failed while running it",
    "Fail": "ONNX Runtime could not load or run it",
}


def load_failure(exc: BaseException, model_id: str) -> str:
    """One line for the response, /readyz and the model's failure record; the full error is logged here."""
    log.error("model %s could not be loaded", model_id, exc_info=exc)
    return f"model {model_id} failed to load: {reason(exc)}"


def reason(exc: BaseException) -> str:
    kind = type(exc)
    if kind.__module__.startswith("onnxruntime"):
        return ORT_ERRORS.get(kind.__name__, ORT_ERRORS["Fail"])
    if type(exc).__name__ == "WarmUpFailed":  # the deploy gate's smoke test: NotServable, caused by the real error
        origin = exc.__cause__.__cause__ if exc.__cause__ is not None else None
        if origin is None:
            return "its warm-up inference produced non-finite scores"
        return f"its warm-up inference failed: {reason(origin)}"
    if isinstance(exc, ModelFolderError | FileNotFoundError):
        return "a file of the model folder is missing or unreadable (ssa.json, model.onnx, tokenizer.json)"
    if isinstance(exc, OSError):
        return "the model folder could not be read"
    if isinstance(exc, ValueError):
        return "its ssa.json is invalid"
    if kind.__module__.startswith("tokenizers") or "tokenizer" in str(exc).lower():
        return "its tokenizer.json could not be read"
    return f"an unexpected {kind.__name__} (the cause has been logged)"
