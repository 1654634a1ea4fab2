"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssa_core.evaluation.metrics import (
    accuracy,
    average_ranks,
    classification_metrics,
    macro_f1,
    mcc,
    pearson,
    regression_metrics,
    spearman,
)

GOLD = np.array([0, 0, 1, 1, 2, 2])
PRED = np.array([0, 1, 1, 1, 2, 0])


def test_accuracy() -> None:
    assert accuracy(GOLD, PRED) == pytest.approx(4 / 6)
    assert accuracy(np.array([]), np.array([])) == 0.0


def test_macro_f1_by_hand() -> None:
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert macro_f1(GOLD, PRED, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_ignores_classes_absent_from_gold_and_predictions() -> None:
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 1]), 4) == 1.0


def test_mcc_multiclass_by_hand() -> None:
    # confusion rows (gold) [[1,1,0],[0,2,0],[1,0,1]]: t = (2,2,2), p = (2,3,1), c = 4, s = 6
    assert mcc(GOLD, PRED, 3) == pytest.approx((4 * 6 - 12) / math.sqrt((36 - 14) * (36 - 12)))


def test_mcc_binary_equals_the_textbook_formula() -> None:
    gold = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    pred = np.array([1, 0, 1, 0, 0, 1, 0, 1])
    tp, tn, fp, fn = 3, 3, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert mcc(gold, pred, 2) == pytest.approx(expected)
    assert mcc(gold, np.zeros_like(gold), 2) == 0.0  # constant prediction: defined as 0, not NaN


def test_pearson_by_hand() -> None:
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 5.0, 9.0])
    assert pearson(x, y) == pytest.approx(11 / math.sqrt(5 * 26))
    assert pearson(x, np.full(4, 3.0)) == 0.0


def test_spearman_with_ties_by_hand() -> None:
    x, y = np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 4.0])
    assert average_ranks(x).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert spearman(np.array([3.0, 1.0, 2.0]), np.array([30.0, 10.0, 20.0])) == pytest.approx(1.0)


def test_metric_dicts() -> None:
    assert set(classification_metrics(GOLD, PRED, 3)) == {"accuracy", "macro_f1", "mcc"}
    reg = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert reg["mse"] == pytest.approx(4 / 3) and set(reg) == {"pearson", "spearman", "mse"}
