"""Label records (`ssa_core.labeling.records.LabelRecord`) as review tasks for Label Studio and Argilla, and the
matching project settings (Label Studio's labeling config XML; Argilla's dataset settings). Torch-free and
streaming: one record in, one task out.

The rationale rule (documented in docs/API.md, "Review formats"): a word of the first text is part of the
rationale when its score is positive and among the top RATIONALE_SHARE of the text's scored words (at least one
word, at most RATIONALE_MAX_WORDS). The score is the probe score (how much the predicted class's probability drops
when the word is masked) when the record has probe scores, else the served attention, else the importance; a record
without any score has no rationale spans. Words of `text_pair` are not marked (the review covers the first text,
which is also what a train file's `rationale_spans` refer to)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any, Final
from xml.sax.saxutils import quoteattr

from ssa_core.labeling.records import LabelRecord, LabelSpan
from ssa_core.vocabulary import ReviewFormat

RATIONALE_SHARE: Final = 0.2  # top share of a text's scored words that make its rationale
RATIONALE_MAX_WORDS: Final = 12
RATIONALE_LABEL: Final = "rationale"  # the span label of a word the prediction rests on
SPAN_FIELD: Final = "rationale"  # Label Studio <Labels name>; Argilla span question name
CHOICE_FIELD: Final = "prediction"  # Label Studio <Choices name>; Argilla label question name
TEXT_FIELD: Final = "text"  # Label Studio <Text name> (data.text); Argilla text field
MODEL_VERSION: Final = "ssa"


def word_score(word: LabelSpan, source: str) -> float | None:
    value = getattr(word, source)
    return None if value is None or not math.isfinite(value) else float(value)


def score_source(record: LabelRecord) -> str | None:
    """Which score ranks the words: probe when any word was probed, else attention, else importance."""
    for source in ("probe", "attention", "importance"):
        if any(word_score(w, source) is not None for w in record.words if w.segment == 0):
            return source
    return None


def rationale_words(record: LabelRecord, share: float = RATIONALE_SHARE,
                    max_words: int = RATIONALE_MAX_WORDS) -> list[LabelSpan]:
    """The words of the first text the prediction rests on (the module's rule), in text order."""
    source = score_source(record)
    if source is None:
        return []
    scored = [(s, i) for i, w in enumerate(record.words)
              if w.segment == 0 and (s := word_score(w, source)) is not None]
    if not scored:
        return []
    keep = min(max_words, max(1, math.ceil(share * len(scored))))
    top = sorted(scored, key=lambda pair: (-pair[0], pair[1]))[:keep]
    chosen = sorted(i for s, i in top if s > 0)
    return [record.words[i] for i in chosen]


def _classes(record: LabelRecord) -> list[str]:
    return list(record.scores) if record.scores else [str(record.prediction)]


# ---- Label Studio ---------------------------------------------------------------------------------------------
def label_studio_config(classes: Iterable[str]) -> str:
    """The labeling config (span labels on data.text, one choice of class) that the exported tasks fit."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        f'  <Labels name="{SPAN_FIELD}" toName="{TEXT_FIELD}">\n'
        f'    <Label value="{RATIONALE_LABEL}" background="#ffa94d"/>\n'
        "  </Labels>\n"
        f'  <Text name="{TEXT_FIELD}" value="${TEXT_FIELD}"/>\n'
        f'  <Choices name="{CHOICE_FIELD}" toName="{TEXT_FIELD}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def label_studio_task(record: LabelRecord) -> dict[str, Any]:
    """One Label Studio task: data (text, row, ...) and one prediction whose results are the rationale spans and
    the predicted class."""
    result: list[dict[str, Any]] = []
    for k, word in enumerate(rationale_words(record)):
        result.append({"id": f"r{record.index}-{k}", "from_name": SPAN_FIELD, "to_name": TEXT_FIELD,
                       "type": "labels", "origin": "prediction",
                       "value": {"start": word.start, "end": word.end, "text": word.text,
                                 "labels": [RATIONALE_LABEL]}})
    if isinstance(record.prediction, str):
        result.append({"id": f"c{record.index}", "from_name": CHOICE_FIELD, "to_name": TEXT_FIELD,
                       "type": "choices", "origin": "prediction", "value": {"choices": [record.prediction]}})
    data: dict[str, Any] = {TEXT_FIELD: record.text, "row": record.row, "index": record.index}
    if record.text_pair is not None:
        data["text_pair"] = record.text_pair
    if record.label is not None:
        data["label"] = record.label
    return {"data": data,
            "predictions": [{"model_version": MODEL_VERSION, "score": record.score, "result": result}]}


def label_studio_stream(records: Iterable[LabelRecord]) -> Iterator[str]:
    """The tasks as one JSON array (Label Studio's import format), in pieces."""
    yield "["
    first = True
    for record in records:
        yield ("\n" if first else ",\n") + json.dumps(label_studio_task(record), ensure_ascii=False)
        first = False
    yield "\n]\n"


# ---- Argilla --------------------------------------------------------------------------------------------------
def argilla_settings(classes: Iterable[str]) -> dict[str, Any]:
    """The dataset settings the records fit, as the keyword arguments of argilla's `rg.Settings` (fields,
    questions, metadata) in JSON form."""
    return {
        "fields": [{"name": TEXT_FIELD, "type": "text"}, {"name": "text_pair", "type": "text", "required": False}],
        "questions": [
            {"name": SPAN_FIELD, "type": "span", "field": TEXT_FIELD, "labels": [RATIONALE_LABEL],
             "allow_overlapping": False},
            {"name": CHOICE_FIELD, "type": "label_selection", "labels": list(classes)},
        ],
        "metadata": [{"name": "row", "type": "integer"}],
    }


def argilla_record(record: LabelRecord) -> dict[str, Any]:
    """One Argilla record: fields, metadata and suggestions (the rationale spans, the predicted class)."""
    spans = [{"start": w.start, "end": w.end, "label": RATIONALE_LABEL} for w in rationale_words(record)]
    suggestions: list[dict[str, Any]] = [{"question_name": SPAN_FIELD, "value": spans, "agent": MODEL_VERSION}]
    if isinstance(record.prediction, str):
        suggestions.append({"question_name": CHOICE_FIELD, "value": record.prediction, "score": record.score,
                            "agent": MODEL_VERSION})
    fields: dict[str, Any] = {TEXT_FIELD: record.text}
    if record.text_pair is not None:
        fields["text_pair"] = record.text_pair
    return {"id": f"row-{record.row}", "fields": fields, "metadata": {"row": record.row},
            "suggestions": suggestions}


def argilla_stream(records: Iterable[LabelRecord], classes: Iterable[str]) -> Iterator[str]:
    """{"settings": ..., "records": [...]} as one JSON object, in pieces."""
    yield '{"settings": ' + json.dumps(argilla_settings(classes), ensure_ascii=False) + ', "records": ['
    first = True
    for record in records:
        yield ("\n" if first else ",\n") + json.dumps(argilla_record(record), ensure_ascii=False)
        first = False
    yield "\n]}\n"


def review_stream(fmt: ReviewFormat, records: Iterable[LabelRecord], classes: Iterable[str]) -> Iterator[str]:
    return label_studio_stream(records) if fmt == "label-studio" else argilla_stream(records, classes)


def classes_of(records: Iterable[LabelRecord]) -> list[str]:
    """The class names (from the first record's scores); [] for regression or no records."""
    for record in records:
        return _classes(record) if record.scores else []
    return []
