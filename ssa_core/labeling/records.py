"""The typed output record of a label job (and of `ssa label`): one per input row, with the model's prediction, the
served attention and a probe score per wordpiece and word, and character offsets. Torch-free.

The same record is written as a JSONL line and as a Parquet row (`ssa_core.labeling.files`)."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PROBES: Final = 64  # words probed per row at most
DEFAULT_BATCH: Final = 64  # inputs per ONNX Runtime run


class LabelSpan(BaseModel):
    """A wordpiece or a whole word of one input row."""

    model_config = ConfigDict(extra="forbid")

    text: str
    start: int = Field(description="character offset of the span's first character in its segment's text")
    end: int = Field(description="character offset just past the span's last character")
    segment: int = Field(description="0: text, 1: text_pair")
    attention: float | None = Field(description="served SSA attention (a word: its wordpieces' sum); None for "
                                    "baseline and co models")
    importance: float | None = Field(description="token importance p_i (a word: the max); None for baseline models")
    probe: float | None = Field(description="drop of the probability of the model's own predicted class when the "
                                "word holding this span is masked (regression: how far the value moves); a word "
                                "carries the whole drop, its wordpieces share it evenly; None when not probed")
    flip: int | None = Field(None, description="with gold labels: 1 when masking the word turns the correct "
                             "prediction wrong, 0 when it stays right (the keep rule's 0 and the flip rule's 1 "
                             "coincide for one-word masks); None without a gold label, on a wrongly predicted row, "
                             "for regression, or when not probed")


class LabelRecord(BaseModel):
    """One input row, labelled."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="0-based position of the row among the input's rows")
    row: int = Field(description="1-based row number in the source file")
    text: str
    text_pair: str | None = None
    label: str | float | None = Field(None, description="the gold label, when the input has one")
    prediction: str | float = Field(description="the predicted class (regression: the value)")
    score: float = Field(description="probability of the predicted class (regression: the value)")
    scores: dict[str, float] = Field(description="probability of every class (empty for regression)")
    correct: bool | None = Field(None, description="prediction == label (classification with gold labels only)")
    truncated: bool = Field(description="the input was cut to the model's max_length; spans cover the kept part")
    probed_words: int = Field(description="words probed (at most probes_per_row; chosen at random beyond that)")
    tokens: list[LabelSpan]
    words: list[LabelSpan]
