"""A job's inputs as the training needs them: the uploaded datasets (with the recorded dev split) and the configs.

The API wrote, after validating them: `<job dir>/train.<ext>` (and `dev.<ext>`), and in the job's Redis record
its spec (`config`: `base_model` as an allow-listed name) and its `DataRecord` (`files`, resolved `columns`,
`task`, `labels`, and `split` with the dev rows when no dev file was given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from jobs.basemodels import resolve_base_model
from jobs.records import DataRecord, SplitRecord
from jobs.spec import TrainJobSpec, build_configs
from ssa_core.config import ModelConfig, Task, TrainConfig
from ssa_core.data.datasets import Dataset, DatasetColumns, load_dataset

NO_SIZE_LIMIT = 1 << 62


class JobInputError(ValueError):
    """The job's recorded inputs are missing or inconsistent: retrying cannot help."""


@dataclass(frozen=True)
class JobInputs:
    train: Dataset
    dev: Dataset
    model_cfg: ModelConfig
    train_cfg: TrainConfig


def load_inputs(job_dir: Path, spec: TrainJobSpec, data: DataRecord | None, base_models: str) -> JobInputs:
    """Datasets and configs of a job; raises JobInputError, ConfigError, DatasetError."""
    if data is None:
        raise JobInputError("the job has no data record")
    columns = DatasetColumns(data.columns.text, data.columns.text_pair, data.columns.label)
    train = _load(job_dir, data.files.train, columns, data.task)
    if data.files.dev:
        dev = _load(job_dir, data.files.dev, columns, data.task)
    else:
        train, dev = apply_split(train, data.split)
    try:
        base_model = resolve_base_model(spec.base_model, base_models)
    except ValueError as exc:
        raise JobInputError(str(exc)) from exc
    model_cfg, train_cfg = build_configs(spec, base_model=base_model, labels=data.labels or train.labels,
                                         task=train.task)
    return JobInputs(train, dev, model_cfg, train_cfg)


def _load(job_dir: Path, name: str, columns: DatasetColumns, task: Task) -> Dataset:
    path = job_dir / name
    if not path.is_file():
        raise JobInputError(f"the job's dataset file {path} is missing")
    return load_dataset(path, columns=columns, task=task, max_bytes=NO_SIZE_LIMIT)


def apply_split(full: Dataset, split: SplitRecord | None) -> tuple[Dataset, Dataset]:
    """(train, dev) of `full` with the dev rows the API chose and recorded."""
    rows = set(split.dev_rows) if split is not None else set()
    if not rows:
        raise JobInputError("the job has neither a dev file nor recorded dev rows")
    dev = [example for example in full.examples if example.row in rows]
    if len(dev) != len(rows):
        raise JobInputError(f"the recorded dev split names {len(rows)} rows, the train file has {len(dev)} of them")
    train = [example for example in full.examples if example.row not in rows]
    return replace(full, examples=train), replace(full, examples=dev)
