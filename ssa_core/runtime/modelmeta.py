"""A model folder's file names and its `ssa.json` as one typed record. Torch-free: read by the runtime, the artifact
store, the API's routes and the worker; written by the training pipeline.

`ModelMeta` gives typed attributes for the fields the code relies on and stays a read-only mapping over every key
as written, so that keys this version does not know (older or newer folders) are kept when it is written back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ssa_core.vocabulary import DEFAULT_ONNX_VARIANT, ONNX_VARIANTS

SSA_FILE = "ssa.json"
METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"
# The int8 variant (`ssa export --quantize int8`): dynamic quantization of model.onnx, written beside it.
INT8_ONNX_FILE = "model.int8.onnx"
# The fp16 variant (`ssa export --quantize fp16`): model.onnx's weights and activations in float16, inputs and outputs
# kept as they are (int64 ids in, float32 out); meant for a GPU (CUDA provider), where float16 runs on tensor cores.
FP16_ONNX_FILE = "model.fp16.onnx"
# The ONNX variants (fp32, int8, fp16: ssa_core.vocabulary); the old name stays for the service's imports.
DEFAULT_VARIANT = DEFAULT_ONNX_VARIANT
# The exported graph's interface, declared once: ssa_core.export.onnx writes these names, ssa_core.runtime.predictor
# feeds and reads them. token_type_ids is an input only where the encoder takes token types.
INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS = "input_ids", "attention_mask", "token_type_ids"
ONNX_INPUTS = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
# logits [B, C], importance p_i [B, T], attention a_i [B, T]
LOGITS, IMPORTANCE, ATTENTION = "logits", "importance", "attention"
ONNX_OUTPUTS = (LOGITS, IMPORTANCE, ATTENTION)
# The model card: README.md with the Hub's metadata block; folders written before it have card.md (no metadata).
CARD_FILE = "README.md"
LEGACY_CARD_FILE = "card.md"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"
# 2: ssa.json names `attention_scores`; a folder of format 1 pools by the released rule ("probability").
FORMAT_VERSION = 2
# What the torch-free runtime needs to serve a folder.
RUNTIME_FILES = (SSA_FILE, ONNX_FILE, TOKENIZER_FILE)
# ssa.json keys every folder has: the runtime refuses a folder without one of them.
REQUIRED_KEYS = ("model_id", "version", "method", "task", "labels", "max_length")
# The SSA hyper-parameters a model was trained with, as the API shows them.
SSA_SETTINGS = ("lambda_tok", "tau", "cls_weight", "attention_temperature", "attention_scores", "pool_transform",
                "detach_token_head")


@dataclass(frozen=True)
class VariantInfo:
    """One ONNX file of a model folder that can serve it: fp32 (model.onnx, always) or int8, which records how well
    its predictions agreed with fp32's when it was made (`ssa_core.export.quantize`), or fp16, likewise."""

    name: str
    file: str
    agreement: float | None = None  # share of the check's inputs where int8 predicted what fp32 did
    checked_inputs: int | None = None
    min_agreement: float | None = None  # the threshold it had to reach
    attention_max_abs_diff: float | None = None  # largest attention difference to fp32 over the checked inputs
    score_max_abs_diff: float | None = None  # fp16: largest difference of the fp32-predicted class's probability
    checked_on: str | None = None  # fp16: the ONNX Runtime provider the check ran on (CUDA where usable, else CPU)
    fp32_matmuls: int | None = None  # int8: MatMuls kept in fp32 so that it agreed enough (ssa_core.export.quantize)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> VariantInfo:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        rows = data.get("checked_inputs")
        return cls(name=name, file=str(data["file"]), agreement=number("agreement"),
                   checked_inputs=None if rows is None else int(rows), min_agreement=number("min_agreement"),
                   attention_max_abs_diff=number("attention_max_abs_diff"),
                   score_max_abs_diff=number("score_max_abs_diff"),
                   checked_on=None if data.get("checked_on") is None else str(data["checked_on"]),
                   fp32_matmuls=None if data.get("fp32_matmuls") is None else int(data["fp32_matmuls"]))

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "name" and value is not None}


class UnknownVariant(LookupError):
    """An ONNX variant the model folder does not have (the message names those it has)."""


class ModelMetaError(ValueError):
    """ssa.json is missing, not JSON, or lacks a required key."""


@dataclass(frozen=True)
class ModelMeta(Mapping[str, Any]):
    """The contents of ssa.json: typed fields, and a mapping over all keys as written (`raw`)."""

    model_id: str
    version: str
    method: str
    task: str
    labels: tuple[str, ...]
    max_length: int
    created_at: str | None = None
    pair: bool = False
    base_model: str | None = None
    metric: str | None = None
    dev_metric: float | None = None
    pad_token_id: int = 0
    job_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = SSA_FILE) -> ModelMeta:
        """Raises ModelMetaError naming `where` and the first missing key."""
        if not isinstance(data, Mapping):
            raise ModelMetaError(f"{where} is not a JSON object")
        for key in REQUIRED_KEYS:
            if key not in data:
                raise ModelMetaError(f"{where} lacks '{key}'")
        dev_metric = data.get("dev_metric")
        return cls(
            model_id=str(data["model_id"]), version=str(data["version"]), method=str(data["method"]),
            task=str(data["task"]), labels=tuple(data.get("labels") or ()), max_length=int(data["max_length"]),
            created_at=data.get("created_at"), pair=bool(data.get("pair", False)), base_model=data.get("base_model"),
            metric=data.get("metric"), dev_metric=None if dev_metric is None else float(dev_metric),
            pad_token_id=int(data.get("pad_token_id", 0)), job_id=data.get("job_id"), raw=dict(data),
        )

    @classmethod
    def read(cls, folder: Path) -> ModelMeta:
        """ssa.json of a model folder; raises ModelMetaError."""
        path = Path(folder) / SSA_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelMetaError(f"{folder}: {SSA_FILE} is missing") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelMetaError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        """Every key as written, with the typed fields' current values (unset optional ones left out)."""
        data = dict(self.raw)
        for name in ("model_id", "version", "method", "task", "max_length", "created_at", "pair", "base_model",
                     "metric", "dev_metric", "pad_token_id", "job_id"):
            value = getattr(self, name)
            if value is not None or name in data:
                data[name] = value
        data["labels"] = list(self.labels)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def with_values(self, **values: Any) -> ModelMeta:
        """A copy with some fields changed (e.g. `job_id`, `model_id`)."""
        return ModelMeta.from_dict({**self.to_dict(), **values})

    @property
    def variants(self) -> tuple[VariantInfo, ...]:
        """The ONNX files that can serve this model: fp32 first, then those ssa.json lists under `variants`."""
        listed = self.raw.get("variants") or {}
        extra = tuple(VariantInfo.from_dict(name, listed[name]) for name in ONNX_VARIANTS[1:] if name in listed)
        return (VariantInfo(DEFAULT_ONNX_VARIANT, ONNX_FILE), *extra)

    def variant(self, name: str) -> VariantInfo:
        """The named variant; raises UnknownVariant naming the ones this model has."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        have = ", ".join(v.name for v in self.variants)
        raise UnknownVariant(f"model {self.model_id} has no {name} variant (it has: {have})")

    @property
    def ssa_settings(self) -> dict[str, Any]:
        """The SSA hyper-parameters the model was trained with (those ssa.json records)."""
        return {key: self.raw[key] for key in SSA_SETTINGS if key in self.raw}

    # ---- Mapping over the keys as written ---------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def read_card(folder: Path) -> str | None:
    """The folder's model card as markdown (README.md without its metadata block, else card.md), or None."""
    for name in (CARD_FILE, LEGACY_CARD_FILE):
        path = Path(folder) / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return strip_front_matter(text) if name == CARD_FILE else text
    return None


def strip_front_matter(text: str) -> str:
    """Markdown without a leading `---` ... `---` metadata block (and the blank lines after it)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return text
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[index + 1 :]).lstrip("\n")
    return text


def file_digest(path: Path) -> str:
    """sha256 of a file (ssa.json's `files` records one per model file)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
