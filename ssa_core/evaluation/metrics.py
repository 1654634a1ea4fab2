"""Evaluation metrics on the full dev split: accuracy, macro-F1, MCC, Pearson, Spearman. NumPy only."""

from __future__ import annotations

import numpy as np


def accuracy(gold: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(gold == pred)) if len(gold) else 0.0


def confusion(gold: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """[classes, classes] counts, rows = gold, columns = predicted."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (gold, pred), 1)
    return matrix


def macro_f1(gold: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions."""
    matrix = confusion(gold, pred, classes).astype(float)
    tp = np.diag(matrix)
    support = matrix.sum(axis=1) + matrix.sum(axis=0)
    present = support > 0
    f1 = np.divide(2 * tp, support, out=np.zeros_like(tp), where=support > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def mcc(gold: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """Matthews correlation coefficient, multiclass form (Gorodkin 2004)."""
    matrix = confusion(gold, pred, classes).astype(float)
    n = matrix.sum()
    correct = np.trace(matrix)
    t = matrix.sum(axis=1)
    p = matrix.sum(axis=0)
    numerator = correct * n - float(t @ p)
    denominator = np.sqrt((n * n - float(p @ p)) * (n * n - float(t @ t)))
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y / denominator) if denominator > 0 else 0.0


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def classification_metrics(gold: np.ndarray, pred: np.ndarray, classes: int) -> dict[str, float]:
    return {
        "accuracy": accuracy(gold, pred),
        "macro_f1": macro_f1(gold, pred, classes),
        "mcc": mcc(gold, pred, classes),
    }


def regression_metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "pearson": pearson(gold, pred),
        "spearman": spearman(gold, pred),
        "mse": float(np.mean((gold - pred) ** 2)) if len(gold) else 0.0,
    }


def precision_recall(gold: np.ndarray, pred: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: precision, recall and F1 ([classes] each; 0 where a class is never predicted / never gold)."""
    matrix = confusion(gold, pred, classes).astype(float)
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence: Σ_b |B_b|/N · |accuracy(B_b) − mean confidence(B_b)| over `bins` equal-width
    confidence bins. probs: [N, C] class probabilities, gold: [N] class ids."""
    if len(gold) == 0:
        return 0.0
    confidence = probs.max(axis=-1)  # [N]
    correct = (probs.argmax(axis=-1) == gold).astype(float)  # [N]
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # [N] bin of each example
    error = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            error += float(chosen.mean()) * abs(float(correct[chosen].mean()) - float(confidence[chosen].mean()))
    return error
