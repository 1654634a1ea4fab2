"""The iteration's training set keeps the data's class mix when probed copies are drawn per class."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ssa_core.config import ConfigError, TrainConfig
from ssa_core.train.trainer import Trainer


def example(label: str) -> SimpleNamespace:
    return SimpleNamespace(example=SimpleNamespace(label=label))


def selector(**cfg: Any) -> Trainer:
    trainer = Trainer.__new__(Trainer)  # only the selection logic is exercised: no model needed
    trainer.cfg = TrainConfig(**cfg)
    trainer.model_cfg = SimpleNamespace(labels=("negative", "positive"), task="classification")  # type: ignore[assignment]
    return trainer


# A biased early model: almost every kept copy comes from one class.
TRAIN: Any = [example("negative")] * 60 + [example("positive")] * 40
WEAK: Any = [SimpleNamespace(encoded=example("negative"))] * 50 + [SimpleNamespace(encoded=example("positive"))] * 3


def class_mix(train: list, weak: list, chosen: np.ndarray, rest: np.ndarray) -> Counter:
    labels = [weak[int(i)].encoded.example.label for i in chosen] + [train[int(i)].example.label for i in rest]
    return Counter(labels)


def test_class_balance_keeps_the_class_mix_and_the_size() -> None:
    chosen, rest = selector(share_balance="class")._select(TRAIN, WEAK, 20, np.random.default_rng(0))
    assert class_mix(TRAIN, WEAK, chosen, rest) == Counter(negative=60, positive=40)
    assert len(chosen) == 12 + 3  # the positive quota (8) is capped by the 3 positive copies kept
    assert len(set(rest.tolist())) == len(rest)


def test_uniform_draw_skews_the_mix_as_the_released_code_does() -> None:
    chosen, rest = selector(share_balance="none")._select(TRAIN, WEAK, 20, np.random.default_rng(0))
    mix = class_mix(TRAIN, WEAK, chosen, rest)
    assert sum(mix.values()) == 100 and len(chosen) == 20
    assert mix["negative"] > 60  # the kept copies pull the mix toward the class the model already predicts


def test_augment_keeps_every_original() -> None:
    chosen, rest = selector(share_balance="class", schedule="augment")._select(
        TRAIN, WEAK, 20, np.random.default_rng(0)
    )
    assert sorted(rest.tolist()) == list(range(100))
    assert len(chosen) == 15


def test_share_balance_is_validated() -> None:
    with pytest.raises(ConfigError, match="share_balance"):
        TrainConfig(share_balance="sometimes")  # type: ignore[arg-type]
