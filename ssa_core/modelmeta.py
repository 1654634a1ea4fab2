"""A model folder's file names and its `ssa.json` as one typed record. Torch-free: read by the runtime, the artifact
store, the API's routes and the worker; written by the training pipeline.

`ModelMeta` gives typed attributes for the fields the code relies on and stays a read-only mapping over every key
as written, so that keys this version does not know (older or newer folders) are kept when it is written back."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SSA_FILE = "ssa.json"
METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"
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
