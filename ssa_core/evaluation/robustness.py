"""The robustness report: how a served model (ONNX runtime, torch-free) holds up when a span that does not bear on
the label is inserted into labelled text.

Two measurements on the same rows: "offtopic" inserts an off-topic clause from a pool (by default the shipped
report pool, disjoint from the training pool; for a positive/negative task a clause of the polarity opposite to the
row's label), "fragments" inserts 3–8 words of a row of another class (the natural distractor for topic tasks).
Each reports clean and misleading accuracy, the flip rate and mean |Δp| between copy and original, and the
clause-attention ratio: the SSA attention mass on the inserted wordpieces over their share of the wordpieces
(1.0 = no discrimination), for copies predicted right and wrong. See docs/ROBUSTNESS.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssa_core.data.datasets import Example
from ssa_core.data.distractors import DistractorPool, Insertion, insert
from ssa_core.records import RobustnessReport, RobustnessScores
from ssa_core.runtime.predictor import Item, Prediction, Predictor

POSITIONS = ("start", "middle", "end")
POLARITY_LABELS = {"positive": "negative", "negative": "positive", "pos": "negative", "neg": "positive"}


@dataclass(frozen=True)
class MisleadingCase:
    """A labelled row and its copy with an inserted span (character span of the span inside `copy.text`)."""

    original: Example
    copy: Insertion


def opposite_polarity(label: str, pool: DistractorPool) -> list[str]:
    """The pool's clauses of the polarity opposite to a positive/negative label (all clauses otherwise)."""
    wanted = POLARITY_LABELS.get(label.lower())
    chosen = [e.text for e in pool.entries if wanted is not None and e.polarity == wanted]
    return chosen or [e.text for e in pool.entries]


def pool_cases(examples: Sequence[Example], pool: DistractorPool, seed: int = 0) -> list[MisleadingCase]:
    """One copy per row with a clause of the pool, positions cycling start / middle / end."""
    rng = np.random.default_rng(seed)
    cases = []
    for n, example in enumerate(examples):
        clauses = opposite_polarity(str(example.label), pool)
        clause = clauses[int(rng.integers(len(clauses)))]
        cases.append(MisleadingCase(example, insert(example.text, clause, POSITIONS[n % 3])))
    return cases


def fragment_cases(examples: Sequence[Example], seed: int = 0) -> list[MisleadingCase]:
    """One copy per row with 3–8 consecutive words of a row of another class; rows of a set with one class only
    get none."""
    rng = np.random.default_rng(seed)
    cases = []
    for n, example in enumerate(examples):
        others = [e for e in examples if str(e.label) != str(example.label) and e.text.split()]
        if not others:
            continue
        words = others[int(rng.integers(len(others)))].text.split()
        size = int(rng.integers(min(3, len(words)), min(8, len(words)) + 1))
        start = int(rng.integers(0, len(words) - size + 1))
        fragment = " ".join(words[start : start + size])
        cases.append(MisleadingCase(example, insert(example.text, fragment, POSITIONS[n % 3])))
    return cases


def as_item(example: Example, text: str) -> Item:
    return text if example.text_pair is None else (text, example.text_pair)


def clause_ratio(prediction: Prediction, place: Insertion) -> float | None:
    """Attention mass on the wordpieces inside the inserted span / their share of the wordpieces."""
    tokens = [t for t in prediction.tokens or () if t.attention is not None]
    if not tokens:
        return None
    inside = [t for t in tokens if t.segment == 0 and t.start < place.end and t.end > place.start]
    if not inside:
        return None
    total = sum(float(t.attention or 0.0) for t in tokens)
    mass = sum(float(t.attention or 0.0) for t in inside) / total if total > 0 else 0.0
    return mass / (len(inside) / len(tokens))


def measure(predictor: Predictor, cases: Sequence[MisleadingCase], source: str,
            batch_size: int = 64) -> RobustnessScores | None:
    """The scores of `cases` through the served model (None without cases)."""
    if not cases:
        return None
    clean = predictor.predict([as_item(c.original, c.original.text) for c in cases], return_words=False,
                              batch_size=batch_size)
    copies = predictor.predict([as_item(c.original, c.copy.text) for c in cases], return_words=False,
                               batch_size=batch_size)
    gold = [str(c.original.label) for c in cases]
    right: list[float] = []
    wrong: list[float] = []
    deltas = []
    for case, label, before, after in zip(cases, gold, clean, copies, strict=True):
        deltas.append(abs(after.scores[str(before.label)] - before.scores[str(before.label)]))
        ratio = clause_ratio(after, case.copy)
        if ratio is not None:
            (right if str(after.label) == label else wrong).append(ratio)
    n = len(cases)
    return RobustnessScores(
        source=source,
        rows=n,
        clean_accuracy=sum(str(p.label) == g for p, g in zip(clean, gold, strict=True)) / n,
        misleading_accuracy=sum(str(p.label) == g for p, g in zip(copies, gold, strict=True)) / n,
        flip_rate=sum(str(a.label) != str(b.label) for a, b in zip(copies, clean, strict=True)) / n,
        mean_abs_delta=float(np.mean(deltas)),
        clause_attention_ratio_right=float(np.mean(right)) if right else None,
        clause_attention_ratio_wrong=float(np.mean(wrong)) if wrong else None,
    )


def not_measured(reason: str, pool: str = "") -> RobustnessReport:
    return RobustnessReport(None, None, pool, f"not measured: {reason}")


def robustness_report(predictor: Predictor, examples: Sequence[Example], pool: DistractorPool, rows: int,
                      seed: int = 0) -> RobustnessReport:
    """The report on the first `rows` labelled examples (a regression model reports why it has none)."""
    if predictor.task == "regression":
        return not_measured("a regression model has no class for a clause to pull toward", pool.name)
    chosen = list(examples[:rows])
    if rows == 0 or not chosen:
        return not_measured("no rows to measure on", pool.name)
    pair = chosen[0].text_pair is not None
    note = (f"{len(chosen)} rows; offtopic: one clause of pool {pool.name!r} per row"
            + (" (opposite polarity)" if str(chosen[0].label).lower() in POLARITY_LABELS else "")
            + "; fragments: 3-8 words of a row of another class; positions cycle start/middle/end"
            + ("; text pairs: inserted into the first text" if pair else ""))
    return RobustnessReport(measure(predictor, pool_cases(chosen, pool, seed), "offtopic"),
                            measure(predictor, fragment_cases(chosen, seed), "fragments"), pool.name, note)
