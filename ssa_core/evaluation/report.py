"""`ssa eval`'s report: a model folder scored on a labelled dataset through the ONNX runtime (torch-free), plus the
explanation scores of the served attention where torch is installed and the SSA method pools by it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssa_core.data.datasets import Dataset
from ssa_core.evaluation.metrics import (
    accuracy,
    confusion,
    expected_calibration_error,
    macro_f1,
    mcc,
    pearson,
    precision_recall,
    spearman,
)
from ssa_core.runtime.predictor import Item, Predictor


class EvalError(ValueError):
    """The dataset does not fit the model (task, labels, text pairs)."""


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationScores:
    accuracy: float
    macro_f1: float
    mcc: float
    ece: float  # expected calibration error of the top-class probability (15 bins)
    classes: list[ClassScores]
    confusion: list[list[int]]  # rows = gold, columns = predicted, in `labels` order
    labels: list[str]


@dataclass(frozen=True)
class RegressionScores:
    pearson: float
    spearman: float
    mse: float


@dataclass(frozen=True)
class EvalReport:
    model_id: str
    version: str
    method: str
    task: str
    data: str  # the dataset's file name
    examples: int
    truncated: int  # inputs cut to the model's max length
    classification: ClassificationScores | None
    regression: RegressionScores | None
    explanations: dict[str, Any] | None  # ssa_core.train.explanations.ExplanationScores, as metrics.json has them
    explanations_note: str | None  # why there are no explanation scores
    # ssa_core.evaluation.robustness.RobustnessReport.to_dict() with --robustness
    robustness: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def items_of(dataset: Dataset, pair: bool) -> list[Item]:
    if pair and not dataset.pair:
        raise EvalError("this model takes text pairs: the data needs a second text column (--pair-column)")
    if dataset.pair and not pair:
        raise EvalError("this model takes single texts, but the data has a second text column")
    return [(e.text, e.text_pair or "") if pair else e.text for e in dataset.examples]


def gold_ids(dataset: Dataset, labels: Sequence[str]) -> np.ndarray:
    """[N] class ids of the gold labels in the model's label order; EvalError naming labels the model lacks."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(e.label) for e in dataset.examples} - set(index))
    if unknown:
        raise EvalError(f"labels the model does not know: {', '.join(unknown[:10])} (the model's labels: "
                        f"{', '.join(labels)})")
    return np.asarray([index[str(e.label)] for e in dataset.examples], dtype=np.int64)


def classification_scores(gold: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> ClassificationScores:
    """gold: [N] class ids, probs: [N, C] class probabilities."""
    classes = len(labels)
    pred = probs.argmax(axis=-1)
    precision, recall, f1 = precision_recall(gold, pred, classes)
    support = np.bincount(gold, minlength=classes)
    per_class = [ClassScores(label, round(float(p), 4), round(float(r), 4), round(float(f), 4), int(s))
                 for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]
    return ClassificationScores(
        accuracy=round(accuracy(gold, pred), 4), macro_f1=round(macro_f1(gold, pred, classes), 4),
        mcc=round(mcc(gold, pred, classes), 4), ece=round(expected_calibration_error(probs, gold), 4),
        classes=per_class, confusion=confusion(gold, pred, classes).tolist(), labels=list(labels))


def regression_scores(gold: np.ndarray, pred: np.ndarray) -> RegressionScores:
    mse = float(np.mean((gold - pred) ** 2)) if len(gold) else 0.0
    return RegressionScores(round(pearson(gold, pred), 4), round(spearman(gold, pred), 4), round(mse, 6))


def evaluate(predictor: Predictor, dataset: Dataset, batch_size: int = 64) -> EvalReport:
    """Score the model on every example (over-long inputs truncated, and counted); no explanation scores."""
    if dataset.task != predictor.task:
        raise EvalError(f"the model is a {predictor.task} model, but the data's labels are {dataset.task} labels")
    if not dataset.examples:
        raise EvalError("the data has no examples")
    items = items_of(dataset, predictor.pair)
    predictions = predictor.predict(items, return_tokens=False, return_words=False, batch_size=batch_size)
    classification = regression = None
    if predictor.task == "regression":
        gold = np.asarray([float(e.label) for e in dataset.examples])
        regression = regression_scores(gold, np.asarray([float(p.label) for p in predictions]))
    else:
        gold_classes = gold_ids(dataset, predictor.labels)
        probs = np.asarray([[p.scores[label] for label in predictor.labels] for p in predictions])  # [N, C]
        classification = classification_scores(gold_classes, probs, predictor.labels)
    return EvalReport(predictor.model_id, predictor.version, predictor.method, predictor.task,
                      Path(dataset.source).name, len(dataset.examples), sum(p.truncated for p in predictions),
                      classification, regression, None, None)
