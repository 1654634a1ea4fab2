"""Checkpoints (optimizer state round trip, latest pointer, pruning) and the learning-rate schedule."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from ssa_core.config import TrainConfig
from ssa_core.train.checkpoint import TrainState, load_checkpoint, restore_optimizer, save_checkpoint
from ssa_core.train.trainer import linear_schedule, make_optimizer, no_decay


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(4, 3)
        self.LayerNorm = torch.nn.LayerNorm(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x))


def take_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = model(torch.randn(8, 4, generator=generator)).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_optimizer_state_round_trips_and_training_continues_identically(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(learning_rate=1e-2, weight_decay=0.1)
    model = Small()
    optimizer = make_optimizer(model, cfg)
    take_steps(model, optimizer, 3, seed=1)
    state = TrainState(
        "abc",
        completed_iterations=1,
        global_step=3,
        best_iteration=0,
        best_score=0.5,
        history=[{"iteration": 0, "dev": {"accuracy": 0.5}}],
    )
    save_checkpoint(tmp_path, model, {"w": torch.ones(2)}, optimizer, state)

    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.state == state
    assert torch.equal(checkpoint.best["w"], torch.ones(2))
    resumed = Small()
    resumed.load_state_dict(checkpoint.model)
    resumed_optimizer = make_optimizer(resumed, cfg)
    restore_optimizer(resumed_optimizer, checkpoint.optimizer, checkpoint.param_groups)
    original_state = optimizer.state_dict()
    restored_state = resumed_optimizer.state_dict()
    assert restored_state["param_groups"] == json.loads(json.dumps(original_state["param_groups"]))
    for index, slots in original_state["state"].items():
        for name, value in slots.items():
            assert torch.equal(restored_state["state"][index][name], value), (index, name)

    take_steps(model, optimizer, 2, seed=2)
    take_steps(resumed, resumed_optimizer, 2, seed=2)
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_latest_points_at_the_newest_checkpoint_and_older_ones_are_pruned(tmp_path: Path) -> None:
    model = Small()
    optimizer = make_optimizer(model, TrainConfig())
    assert load_checkpoint(tmp_path) is None
    for done in (1, 2):
        save_checkpoint(tmp_path, model, {}, optimizer, TrainState("fp", completed_iterations=done))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-2", "latest.json"]
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.state.completed_iterations == 2
    assert checkpoint.state.best_score == float("-inf")  # survives JSON


def test_no_decay_on_biases_and_layer_norms() -> None:
    model = Small()
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.05))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert [p is model.dense.weight for p in decayed["params"]] == [True]
    assert no_decay("encoder.layer.0.attention.output.LayerNorm.weight") and no_decay("classifier.bias")
    assert no_decay("token_head.norm.weight") and not no_decay("token_head.dense.weight")


def test_linear_schedule_warms_up_then_decays_to_zero() -> None:
    total = 100
    values = [linear_schedule(step, total, 0.1) for step in range(total + 1)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0) and values[10] == pytest.approx(1.0)
    assert all(a < b for a, b in pairwise(values[:10]))
    assert all(a > b for a, b in pairwise(values[10:]))
    assert values[total - 1] == pytest.approx(1 / 90) and values[total] == 0.0
    assert linear_schedule(0, 10, 0.0) == 1.0  # no warm-up: full rate at once
    assert max(values) == 1.0 and min(values[:total]) > 0 and not any(math.isnan(v) for v in values)
