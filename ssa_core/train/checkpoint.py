"""Iteration-boundary checkpoints (model, optimizer, schedule, history) in safetensors + JSON: no pickle."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ssa_core.records import IterationRecord

LATEST = "latest.json"


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs."""

    fingerprint: str
    completed_iterations: int = 0
    global_step: int = 0
    best_iteration: int = -1
    best_score: float = float("-inf")
    history: list[IterationRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a history read back from a checkpoint's state.json (or written by an older version) is a list of dicts
        self.history = [IterationRecord.of(record) for record in self.history]

    def to_dict(self) -> dict[str, Any]:
        """state.json's `state`, as written before the records were typed."""
        return {**self.__dict__, "history": [record.to_dict() for record in self.history]}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Flatten an optimizer's state into named tensors plus its (JSON-able) param groups."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for name, value in slots.items()
        if isinstance(value, torch.Tensor)
    }
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    best_weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: TrainState,
) -> None:
    """Write checkpoint `iter-<k>` completely, then point latest.json at it (atomic rename) and prune older ones."""
    name = f"iter-{state.completed_iterations}"
    target = directory / name
    temp = directory / f".{name}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    save_file(_state_dict(model), str(temp / "model.safetensors"))
    save_file(best_weights, str(temp / "best.safetensors"))
    tensors, groups = optimizer_tensors(optimizer)
    save_file(tensors, str(temp / "optimizer.safetensors"))
    meta = {"state": state.to_dict(), "param_groups": groups}
    (temp / "state.json").write_text(json.dumps(meta))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(temp, target)
    pointer = directory / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"checkpoint": name}))
    os.replace(pointer, directory / LATEST)
    for old in directory.glob("iter-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    param_groups: list[dict[str, Any]]
    state: TrainState


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The latest complete checkpoint under `directory`, or None when there is none."""
    pointer = directory / LATEST
    if not pointer.exists():
        return None
    folder = directory / json.loads(pointer.read_text())["checkpoint"]
    meta = json.loads((folder / "state.json").read_text())
    return Checkpoint(
        model=load_file(str(folder / "model.safetensors")),
        best=load_file(str(folder / "best.safetensors")),
        optimizer=load_file(str(folder / "optimizer.safetensors")),
        param_groups=meta["param_groups"],
        state=TrainState(**meta["state"]),
    )
