"""Labelling rows with a served model (torch-free: ONNX Runtime through `ssa_core.runtime.predictor.Predictor`): the
prediction, the served attention, and a probe score per word and wordpiece: each word masked in a copy of its own,
the score being how much the probability of the model's own predicted class drops (no gold label needed). With gold
labels, a flip label per word as well. Used by the label job's shards and by `ssa label`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding

from ssa_core.data.datasets import Dataset, Example
from ssa_core.data.textspans import Span, token_positions, token_spans, word_spans
from ssa_core.labeling.records import DEFAULT_BATCH, DEFAULT_PROBES, LabelRecord, LabelSpan
from ssa_core.runtime.predictor import Ids, Item, Predictor, softmax, words_of

MASK_TOKENS = ("[MASK]", "<mask>")


class LabelingError(ValueError):
    """The model cannot label this input (no mask token, labels that do not fit)."""


@dataclass(frozen=True)
class LabelOptions:
    """probes_per_row: words probed per row at most (drawn at random, seeded by the row, beyond that);
    batch_size: inputs per ONNX Runtime run (the batch budget)."""

    probes_per_row: int = DEFAULT_PROBES
    batch_size: int = DEFAULT_BATCH
    seed: int = 0


def mask_id_of(predictor: Predictor) -> int:
    for token in MASK_TOKENS:
        found = predictor.tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    raise LabelingError(f"the tokenizer of model {predictor.model_id!r} has no mask token ({', '.join(MASK_TOKENS)})")


def check_labels(predictor: Predictor, data: Dataset) -> list[str]:
    """The file's gold labels the model does not know (empty when they fit, or the file has none)."""
    if not data.labelled or predictor.task == "regression":
        return []
    known = set(predictor.labels)
    return sorted({str(e.label) for e in data.examples} - known)


def item_of(example: Example) -> Item:
    return example.text if example.text_pair is None else (example.text, example.text_pair)


class Labeler:
    """Labels rows with one loaded model; `label(examples, first_index)` returns one record per example, in order."""

    def __init__(self, predictor: Predictor, options: LabelOptions, labelled: bool) -> None:
        self.predictor, self.options, self.labelled = predictor, options, labelled
        self.mask_id = mask_id_of(predictor)
        self.regression = predictor.task == "regression"

    def label(self, examples: Sequence[Example], first_index: int) -> list[LabelRecord]:
        """Records of `examples`, whose first is the input's row `first_index` (0-based)."""
        if not examples:
            return []
        p = self.predictor
        items = [item_of(e) for e in examples]
        encodings = p.encode(items)
        truncated = p._truncate(items, encodings, True)
        rows = p.run_buckets(encodings, self.options.batch_size)
        base = [self._decision(row["logits"])[0] for row in rows]
        copies: list[Ids] = []
        owners: list[tuple[int, list[int]]] = []
        probed = []
        for i, encoding in enumerate(encodings):
            chosen = self._chosen_words(words_of(encoding), first_index + i)
            probed.append(len(chosen))
            for group in chosen:
                ids = list(encoding.ids)
                for position in group:
                    ids[position] = self.mask_id
                copies.append(Ids(ids, list(encoding.type_ids)))
                owners.append((i, group))
        drops = [np.full(len(e.ids), np.nan) for e in encodings]
        flips = [np.full(len(e.ids), np.nan) for e in encodings]
        gold = [self._gold_index(e) for e in examples]
        outcome = p.run_buckets(copies, self.options.batch_size) if copies else []
        for (i, group), out in zip(owners, outcome, strict=True):
            after = self._decision(out["logits"])[0]
            if self.regression:
                drop = abs(float(base[i][0] - after[0]))
            else:
                c = int(base[i].argmax())
                drop = float(base[i][c] - after[c])
                if gold[i] is not None and c == gold[i]:
                    flips[i][group] = 0.0 if int(after.argmax()) == gold[i] else 1.0
            drops[i][group] = drop / len(group)
        return [self._record(examples[i], first_index + i, items[i], encodings[i], rows[i], truncated[i], probed[i],
                             drops[i], flips[i], gold[i]) for i in range(len(examples))]

    # ---- helpers -------------------------------------------------------------------------------------
    def _decision(self, logits: np.ndarray) -> np.ndarray:
        return logits if self.regression else softmax(logits)

    def _chosen_words(self, groups: list[list[int]], index: int) -> list[list[int]]:
        limit = self.options.probes_per_row
        if len(groups) <= limit:
            return groups
        rng = np.random.default_rng([self.options.seed, index])
        return [groups[int(k)] for k in sorted(rng.choice(len(groups), limit, replace=False))]

    def _gold_index(self, example: Example) -> int | None:
        if not self.labelled or self.regression:
            return None
        try:
            return self.predictor.labels.index(str(example.label))
        except ValueError:
            return None

    def _record(self, example: Example, index: int, item: Item, encoding: Encoding, out: dict[str, np.ndarray],
                truncated: bool, probed: int, drops: np.ndarray, flips: np.ndarray,
                gold: int | None) -> LabelRecord:
        p = self.predictor
        logits = out["logits"][0]
        if self.regression:
            prediction: str | float = float(logits[0])
            score, scores = float(logits[0]), {}
            correct = None
        else:
            probs = softmax(logits)
            best = int(probs.argmax())
            prediction, score = p.labels[best], float(probs[best])
            scores = {name: float(value) for name, value in zip(p.labels, probs, strict=True)}
            correct = None if gold is None else best == gold
        texts = (item, "") if isinstance(item, str) else (item[0], item[1])
        positions = token_positions(encoding.offsets, encoding.word_ids, encoding.sequence_ids)
        attention = out["attention"][0] if p.method in ("layer", "hybrid") else None
        importance = out["importance"][0] if p.method != "baseline" else None
        tokens = token_spans(positions, texts, attention, importance, drops.tolist())
        words = word_spans(positions, [_copy(t) for t in tokens], texts)
        token_flips = [flips[position.index] for position in positions]
        word_flips: list[float] = []
        previous: tuple[int, int] | None = None
        for position, flip in zip(positions, token_flips, strict=True):
            if (position.segment, position.word) != previous:
                word_flips.append(flip)
                previous = (position.segment, position.word)
        label = None if not self.labelled else example.label
        return LabelRecord(
            index=index, row=example.row, text=example.text, text_pair=example.text_pair, label=label,
            prediction=prediction, score=score, scores=scores, correct=correct, truncated=truncated,
            probed_words=probed, tokens=[_span(t, f) for t, f in zip(tokens, token_flips, strict=True)],
            words=[_span(w, f) for w, f in zip(words, word_flips, strict=True)])


def _copy(span: Span) -> Span:
    return Span(span.text, span.start, span.end, span.segment, span.attention, span.importance, span.occlusion)


def _number(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _span(span: Span, flip: float) -> LabelSpan:
    return LabelSpan(text=span.text, start=span.start, end=span.end, segment=span.segment,
                     attention=_number(span.attention), importance=_number(span.importance),
                     probe=_number(span.occlusion), flip=None if np.isnan(flip) else int(flip))


def labelled_chunks(labeler: Labeler, examples: Sequence[Example], start: int, end: int,
                    chunk: int, offset: int = 0) -> Iterator[list[LabelRecord]]:
    """Records of examples [start, end) in chunks of at most `chunk` rows, in order (the caller streams them out);
    `offset`: the input row index of examples[0] (a shard that read only its own rows)."""
    for first in range(start, end, chunk):
        yield labeler.label(examples[first:min(first + chunk, end)], first + offset)
