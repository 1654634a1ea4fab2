"""Typed records of a training run, read across packages instead of dicts read by key: one iteration's record (the
trainer's history entry, with its probe summary), the explanation scores of the served attention, and the training
metrics (metrics.json). Torch-free.

Each is a frozen dataclass whose `to_dict()` is exactly the JSON written before these types existed (same keys, same
order, an optional entry left out when it is None) and whose `from_dict()` reads that JSON back, from this version or
an older one: checkpoint histories, metrics.json files and job records written before the upgrade still load. Keys
this version does not know are kept (`extra`) and written back after the known ones.

To add a field: give it a default (None where it may be absent, so that older JSON reads and writes back as it was)
and put it where its key should come in `to_dict()`'s order."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R", bound="_Record")


@dataclass(frozen=True)
class _Record:
    """Fields in JSON order; a field that is None is left out; `extra` holds the keys this version does not know."""

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, compare=True)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is not None:
                data[f.name] = _plain(value)
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {key: value for key, value in data.items() if key in names}
        extra = {key: value for key, value in data.items() if key not in names}
        return cls(**cls._read(known), extra=extra)

    @classmethod
    def _read(cls, known: dict[str, Any]) -> dict[str, Any]:
        """The known keys' values as the fields take them (nested records parsed)."""
        return known


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class ProbeSummary(_Record):
    """The `probe` entry of an iteration that probed: the probing step's counts (ssa_core.train.probing.ProbeStats),
    the chosen weak labels' statistics (0/1 rules: zero-label share and labelled tokens; `graded`: how sharp the
    targets are), how many were selected, and the reviewed rows (only where the data has reviewed rationales)."""

    probed_examples: int | None = None
    masked_copies: int | None = None
    kept_copies: int | None = None
    kept_rate: float | None = None
    original_accuracy: float | None = None
    masked_token_share: float | None = None
    rounds: int | None = None
    # the 0/1 rules (keep, flip, contrast)
    zero_label_share: float | None = None
    labelled_tokens_per_example: float | None = None
    # graded
    examples_with_targets: float | None = None
    target_entropy: float | None = None
    selected: int | None = None
    # rows with reviewed rationales (graded: those whose target fell back to the even one)
    reviewed: int | None = None
    reviewed_even: int | None = None


@dataclass(frozen=True)
class IterationRecord(_Record):
    """One finished SSA iteration (the trainer's history entry; metrics.json's `iterations`): the share of probed
    copies, the mean losses, the dev metrics, the probe summary (iterations >= 1 of a method with a token head) and the
    wall time."""

    iteration: int
    share: float | None = None
    train_loss: float | None = None
    cls_loss: float | None = None
    tok_loss: float | None = None
    # iterations with distractor copies (ssa_core.train.distraction): the mean consistency term and the mean
    # attention mass on inserted spans
    consistency_loss: float | None = None
    distractor_attention: float | None = None
    dev: Mapping[str, float] = field(default_factory=dict)
    probe: ProbeSummary | None = None
    distractor_copies: int | None = None  # how many distractor copies trained
    seconds: float | None = None

    @classmethod
    def _read(cls, known: dict[str, Any]) -> dict[str, Any]:
        probe = known.get("probe")
        if isinstance(probe, Mapping):
            known = {**known, "probe": ProbeSummary.from_dict(probe)}
        return {**known, "dev": dict(known.get("dev") or {})}

    @classmethod
    def of(cls, value: IterationRecord | Mapping[str, Any]) -> IterationRecord:
        """`value` as a record: a record as it is, a dict (a history entry as JSON has it) parsed."""
        return value if isinstance(value, IterationRecord) else cls.from_dict(value)


@dataclass(frozen=True)
class ExplanationScores(_Record):
    """What `metrics.json` and the model card carry about the served attention (on the dev set)."""

    sentences: int
    entropy: float
    top20_share: float
    comprehensiveness_20: float
    sufficiency_20: float
    random_comprehensiveness_20: float


@dataclass(frozen=True)
class HumanRationales(_Record):
    """How many training rows carried reviewed rationales, of how many."""

    rows: int
    train_rows: int


@dataclass(frozen=True)
class RobustnessScores(_Record):
    """One robustness measurement (ssa_core.evaluation.robustness): the same rows clean and with an inserted span."""

    source: str  # "offtopic" | "fragments" (or a benchmark set's name)
    rows: int
    clean_accuracy: float
    misleading_accuracy: float
    flip_rate: float  # share of copies whose predicted label differs from the original's
    mean_abs_delta: float  # mean |p(c | copy) − p(c | original)|, c = the original's predicted class
    # attention mass on the inserted wordpieces / their share of the wordpieces; None without SSA attention (or
    # without copies predicted that way)
    clause_attention_ratio_right: float | None = None
    clause_attention_ratio_wrong: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, the ratios as null where there are none (a report's readers expect the keys)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"} | dict(self.extra)


ROBUSTNESS_SOURCES = (("offtopic", "off-topic clause"), ("fragments", "words of another class"))


@dataclass(frozen=True)
class RobustnessReport(_Record):
    """metrics.json's "robustness": both measurements on the model's dev rows, or why there are none."""

    offtopic: RobustnessScores | None = None
    fragments: RobustnessScores | None = None
    pool: str = ""  # the clause pool "offtopic" drew from
    note: str = ""  # how the copies were made, or why nothing was measured

    def to_dict(self) -> dict[str, Any]:
        return {"offtopic": None if self.offtopic is None else self.offtopic.to_dict(),
                "fragments": None if self.fragments is None else self.fragments.to_dict(),
                "pool": self.pool, "note": self.note, **self.extra}

    @classmethod
    def _read(cls, known: dict[str, Any]) -> dict[str, Any]:
        return {**known, **{key: RobustnessScores.from_dict(known[key]) for key, _ in ROBUSTNESS_SOURCES
                            if isinstance(known.get(key), Mapping)}}

    @property
    def measured(self) -> bool:
        return self.offtopic is not None or self.fragments is not None

    def measurements(self) -> list[tuple[str, RobustnessScores]]:
        """(what was inserted, its scores) for each measurement made."""
        return [(name, scores) for key, name in ROBUSTNESS_SOURCES if (scores := getattr(self, key)) is not None]


@dataclass(frozen=True)
class TrainingMetrics(_Record):
    """A training run's metrics (metrics.json): the selection metric, the best iteration and its dev metrics, every
    iteration's record, the reviewed rationales, and the explanation scores where they were measured."""

    metric: str
    best_iteration: int
    dev: Mapping[str, float] = field(default_factory=dict)
    iterations: tuple[IterationRecord, ...] = ()
    human_rationales: HumanRationales | None = None
    explanations: ExplanationScores | None = None
    robustness: RobustnessReport | None = None

    @classmethod
    def _read(cls, known: dict[str, Any]) -> dict[str, Any]:
        values = {**known, "dev": dict(known.get("dev") or {}),
                  "iterations": tuple(IterationRecord.of(r) for r in known.get("iterations") or ())}
        if isinstance(known.get("human_rationales"), Mapping):
            values["human_rationales"] = HumanRationales.from_dict(known["human_rationales"])
        if isinstance(known.get("explanations"), Mapping):
            values["explanations"] = ExplanationScores.from_dict(known["explanations"])
        if isinstance(known.get("robustness"), Mapping):
            values["robustness"] = RobustnessReport.from_dict(known["robustness"])
        return values

    @property
    def dev_metric(self) -> float:
        """The selection metric on the dev set, at the best iteration."""
        return self.dev[self.metric]
