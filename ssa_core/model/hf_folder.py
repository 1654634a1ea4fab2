"""A model folder's Hugging Face side: the weight names `transformers` expects, config.json (labels, `auto_map`, the
SSA settings) and the shipped modeling code (`ssa_core/model/hf_modeling.py` copied as `modeling_ssa.py`).

In memory, `SSAModel` keeps its encoder under `encoder.` and its [CLS] pooler as `pooler.0`; on disk the weights
carry the encoder's own prefix (`bert.`), the pooler sits where the encoder's pooler would (`bert.pooler.dense`), and
the special-token buffer lives in config.json instead. Folders written before this layout (names as in memory, no
`layout` entry in the safetensors metadata) still load: `is_hf_layout` tells the two apart."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import PretrainedConfig

from ssa_core.config import ModelConfig

LAYOUT_KEY = "layout"
HF_LAYOUT = "transformers"
MODELING_FILE = "modeling_ssa.py"
AUTO_CLASS = "AutoModelForSequenceClassification"
HF_CLASS = "SSAForSequenceClassification"
# Encoders whose standard sequence classifier is exactly ours for a baseline model: dropout + linear on the pooler's
# tanh(dense([CLS])). A baseline folder on one of them also loads without remote code.
STANDARD_HEADS = {"bert": "BertForSequenceClassification"}
_SSA_PREFIX = "encoder."
_SSA_POOLER = "pooler.0."
_SPECIAL_IDS = "special_ids"


def encoder_prefix(encoder: torch.nn.Module) -> str:
    """The attribute name `transformers` gives this encoder inside its task models (`bert`, `roberta`, ...)."""
    return str(getattr(encoder, "base_model_prefix", "") or "encoder")


def to_hf_layout(state: Mapping[str, torch.Tensor], prefix: str, encoder_pooler: bool) -> dict[str, torch.Tensor]:
    """SSAModel's state dict with the names of the Hugging Face layout (the special-token buffer left out)."""
    pooler = f"{prefix}.pooler.dense." if encoder_pooler else "pooler_dense."
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == _SPECIAL_IDS:
            continue
        if key.startswith(_SSA_PREFIX):
            key = f"{prefix}." + key[len(_SSA_PREFIX):]
        elif key.startswith(_SSA_POOLER):
            key = pooler + key[len(_SSA_POOLER):]
        out[key] = value
    return out


def from_hf_layout(state: Mapping[str, torch.Tensor], prefix: str,
                   special_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inverse of `to_hf_layout`: names as SSAModel has them, with its special-token buffer."""
    poolers = (f"{prefix}.pooler.dense.", "pooler_dense.")
    out: dict[str, torch.Tensor] = {_SPECIAL_IDS: special_ids}
    for key, value in state.items():
        pooler = next((p for p in poolers if key.startswith(p)), None)
        if pooler is not None:
            key = _SSA_POOLER + key[len(pooler):]
        elif key.startswith(f"{prefix}."):
            key = _SSA_PREFIX + key[len(prefix) + 1:]
        out[key] = value
    return out


def is_hf_layout(weights: Path) -> bool:
    """True when the safetensors file was written in the Hugging Face layout (its metadata says so)."""
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata() or {}
    return metadata.get(LAYOUT_KEY) == HF_LAYOUT


def standard_head(model_type: str, method: str, encoder_pooler: bool) -> str | None:
    """The transformers class that loads this folder without remote code, or None (it needs `modeling_ssa.py`)."""
    if method != "baseline" or not encoder_pooler:
        return None
    return STANDARD_HEADS.get(model_type)


def hf_config(encoder_config: PretrainedConfig, cfg: ModelConfig, special_ids: Sequence[int], prefix: str,
              encoder_pooler: bool) -> PretrainedConfig:
    """The encoder's config with the task's labels, the SSA settings (`ssa`) and the `auto_map` to our class."""
    config = copy.deepcopy(encoder_config)
    standard = standard_head(str(config.model_type), cfg.method, encoder_pooler)
    config.architectures = [standard or HF_CLASS]
    config.auto_map = {AUTO_CLASS: f"{Path(MODELING_FILE).stem}.{HF_CLASS}"}
    if cfg.task == "regression":
        config.num_labels = 1
        config.problem_type = "regression"
    else:
        config.id2label = dict(enumerate(cfg.labels))
        config.label2id = {label: index for index, label in enumerate(cfg.labels)}
        config.problem_type = "single_label_classification"
    settings: dict[str, Any] = {
        "method": cfg.method, "tau": cfg.tau, "cls_weight": cfg.cls_weight,
        "attention_temperature": cfg.attention_temperature, "attention_scores": cfg.attention_scores,
        "pool_transform": cfg.pool_transform, "dropout": cfg.dropout, "special_ids": sorted(set(special_ids)),
        "encoder_prefix": prefix, "encoder_pooler": encoder_pooler,
    }
    config.ssa = settings
    return config


def write_modeling_code(out_dir: Path) -> None:
    """Copy the self-contained modeling code (ssa_core/model/hf_modeling.py) into the folder as modeling_ssa.py."""
    shutil.copyfile(Path(__file__).with_name("hf_modeling.py"), out_dir / MODELING_FILE)
