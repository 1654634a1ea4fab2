"""A job's inputs as the training needs them: the uploaded datasets (with the recorded dev split) and the configs.

The API wrote, after validating them: `<job dir>/train.<ext>` (and `dev.<ext>`), and in the job's Redis record
`config` (the request: ModelConfig/TrainConfig field names, `base_model` as an allow-listed name) and `data`
(`files`, resolved `columns`, `task`, `labels`, and `split` with the dev rows when no dev file was given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data import Dataset, DatasetColumns, load_dataset
from worker.settings import resolve_base_model

NO_SIZE_LIMIT = 1 << 62


class JobInputError(ValueError):
    """The job's recorded inputs are missing or inconsistent: retrying cannot help."""


@dataclass(frozen=True)
class JobInputs:
    train: Dataset
    dev: Dataset
    model_cfg: ModelConfig
    train_cfg: TrainConfig


def load_inputs(job_dir: Path, config: dict[str, Any], data: dict[str, Any], base_models: str) -> JobInputs:
    """Datasets and configs of a job; raises JobInputError, ConfigError, DatasetError."""
    columns = DatasetColumns(**data["columns"])
    train = _load(job_dir, data["files"]["train"], columns, data["task"])
    dev_file = data["files"].get("dev")
    if dev_file:
        dev = _load(job_dir, dev_file, columns, data["task"])
    else:
        train, dev = apply_split(train, data.get("split") or {})
    try:
        base_model = resolve_base_model(str(config.get("base_model", "minilm")), base_models)
    except ValueError as exc:
        raise JobInputError(str(exc)) from exc
    labels = tuple(data.get("labels") or train.labels)
    model_cfg = ModelConfig.from_dict({**config, "base_model": base_model, "labels": labels, "task": train.task})
    return JobInputs(train, dev, model_cfg, TrainConfig.from_dict(config))


def _load(job_dir: Path, name: str, columns: DatasetColumns, task: Any) -> Dataset:
    path = job_dir / name
    if not path.is_file():
        raise JobInputError(f"the job's dataset file {path} is missing")
    return load_dataset(path, columns=columns, task=task, max_bytes=NO_SIZE_LIMIT)


def apply_split(full: Dataset, split: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """(train, dev) of `full` with the dev rows the API chose and recorded."""
    rows = set(split.get("dev_rows") or ())
    if not rows:
        raise JobInputError("the job has neither a dev file nor recorded dev rows")
    dev = [example for example in full.examples if example.row in rows]
    if len(dev) != len(rows):
        raise JobInputError(f"the recorded dev split names {len(rows)} rows, the train file has {len(dev)} of them")
    train = [example for example in full.examples if example.row not in rows]
    return replace(full, examples=train), replace(full, examples=dev)
