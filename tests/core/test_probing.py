"""Probing: span-sampler statistics, the keep and flip labelling rules against a direct computation, packing."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ssa_core.data.datasets import Dataset, Example
from ssa_core.export.folder import load_trained
from ssa_core.model.ssa_model import IGNORE_INDEX
from ssa_core.model.tokenize import Encoded, encode_examples, load_tokenizer
from ssa_core.train.probing import (
    BANDS,
    SPAN_LENGTHS,
    SPAN_PROBS,
    Prober,
    Sequences,
    length_batches,
    packed_outputs,
    same_decision,
    sample_example_mask,
    sample_span_mask,
    with_mask,
)
from tests.core.helpers import single_decision, single_logits

CPU = torch.device("cpu")


def expected_marginals(length: int, trigger: float) -> np.ndarray:
    """P(position masked) from the sampler's definition: per band of size m, m trials; an event masks the span
    ending at a uniform anchor, clipped to the band, so band index j is covered by min(L, m - j) of m anchors."""
    out = []
    for band in np.array_split(np.arange(length), BANDS):
        m = len(band)
        for j in range(m):
            cover = sum(p * min(int(n), m - j) for n, p in zip(SPAN_LENGTHS, SPAN_PROBS, strict=True)) / m
            out.append(1.0 - (1.0 - trigger * cover) ** m)
    return np.asarray(out)


def mask_frequencies(positions: list[int], draws: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(positions))
    where = {p: i for i, p in enumerate(positions)}
    for _ in range(draws):
        for p in sample_span_mask(positions, rng, 0.1):
            counts[where[p]] += 1
    return counts / draws


@pytest.mark.parametrize("length", [8, 10, 13])
def test_spans_end_at_anchor_and_stay_inside_their_quartile_band(length: int) -> None:
    # Positions are offset (as after [CLS]); bands of 2-4 make clipping visible: the first position of a band is
    # masked far more often than its last, which spans leaking from the next band would even out.
    positions = list(range(5, 5 + length))
    observed = mask_frequencies(positions, draws=12000)
    np.testing.assert_allclose(observed, expected_marginals(length, 0.1), atol=0.012)


def test_masked_share_is_15_to_19_percent_on_real_sentences(movie_encoded: list[Encoded]) -> None:
    rng = np.random.default_rng(1)
    masked = real = 0
    for _ in range(15):
        for e in movie_encoded:
            mask = sample_example_mask(e, rng, 0.1)
            assert set(mask) <= {p.index for p in e.positions}
            masked += len(mask)
            real += len(e.positions)
    assert 0.15 <= masked / real <= 0.19


def test_sampler_is_deterministic_under_a_seed(movie_encoded: list[Encoded]) -> None:
    def draw(seed: int) -> list[list[int]]:
        rng = np.random.default_rng(seed)
        return [sample_example_mask(e, rng, 0.1) for e in movie_encoded[:50]]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_sampler_returns_sorted_unique_positions_and_handles_tiny_segments() -> None:
    rng = np.random.default_rng(0)
    for length in range(0, 6):
        positions = list(range(1, 1 + length))
        for _ in range(200):
            mask = sample_span_mask(positions, rng, 0.5)
            assert mask == sorted(set(mask)) and set(mask) <= set(positions)


def test_pair_segments_are_masked_independently(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    pair = Example(0, 1, "A fine film.", "It was a long, slow and rather dreary night at the movies for everyone.", "x")
    (encoded,) = encode_examples(tokenizer, [pair], 64)
    first, second = encoded.segment_positions(0), encoded.segment_positions(1)
    assert len(first) == 4 and len(second) > 12
    rng = np.random.default_rng(2)
    counts = np.zeros(len(encoded))
    draws = 12000
    for _ in range(draws):
        counts[sample_example_mask(encoded, rng, 0.1)] += 1
    # Each segment has its own quartile bands: a 4-token segment has bands of one token each.
    np.testing.assert_allclose(counts[first] / draws, expected_marginals(len(first), 0.1), atol=0.012)
    np.testing.assert_allclose(counts[second] / draws, expected_marginals(len(second), 0.1), atol=0.012)
    specials = [i for i in range(len(encoded)) if i not in set(first) | set(second)]
    assert counts[specials].sum() == 0


# ---- labelling rules against a direct computation -------------------------------------------------------


@pytest.fixture(scope="module")
def probe_setup(trained_model_dir: Path, movie_train: Dataset) -> tuple:
    """The trained model, its tokenizer, 24 encoded training rows and their logits computed one at a time."""
    model, tokenizer, meta = load_trained(trained_model_dir)
    encoded = encode_examples(tokenizer, movie_train.examples[:24], int(meta["max_length"]))
    logits = np.stack([single_logits(model, e.input_ids, e.token_type_ids).numpy() for e in encoded])
    return model, tokenizer, encoded, logits


def check_label_layout(encoded: Encoded, labels: list[int], zeros: set[int], probed: set[int] | None) -> None:
    real = {p.index for p in encoded.positions}
    assert len(labels) == len(encoded.input_ids)
    for index, label in enumerate(labels):
        if index not in real:
            assert label == IGNORE_INDEX, f"special token {index} labelled {label}"
        elif probed is not None and index not in probed:
            assert label == IGNORE_INDEX
        else:
            assert label == (0 if index in zeros else 1)


def test_keep_rule_matches_a_direct_computation(probe_setup: tuple) -> None:
    model, tokenizer, encoded, logits = probe_setup
    labels = model.config.labels
    mask_id, trigger = tokenizer.mask_token_id, 0.3
    prober = Prober(model, mask_id, tokenizer.pad_token_id, CPU)
    weak, stats = prober.keep(encoded, labels, len(encoded), np.random.default_rng(11), trigger, rounds=1)

    rng = np.random.default_rng(11)  # replay the sampler in the prober's order: correct originals, in order
    expected: dict[int, list[int]] = {}
    correct = 0
    for i, e in enumerate(encoded):
        original = int(logits[i].argmax())
        if original != labels.index(e.example.label):
            continue
        correct += 1
        mask = sample_example_mask(e, rng, trigger)
        if mask and single_decision(model, with_mask(e.input_ids, mask, mask_id), e.token_type_ids) == original:
            expected[i] = mask
    assert 0 < len(expected) < len(encoded)
    assert {w.encoded.example.example_id: w.masked for w in weak} == expected
    assert stats.originals_correct == correct and stats.kept == len(weak)
    for w in weak:
        assert mask_id not in w.encoded.input_ids  # a kept copy trains on the unmasked text
        check_label_layout(w.encoded, w.token_labels, set(w.masked), None)


def test_graded_rule_matches_a_direct_computation(probe_setup: tuple) -> None:
    """Each word masked alone; its wordpieces share the clipped drop of the gold class's log-probability."""
    model, tokenizer, encoded, logits = probe_setup
    labels = model.config.labels
    mask_id = tokenizer.mask_token_id
    prober = Prober(model, mask_id, tokenizer.pad_token_id, CPU)
    weak, stats = prober.graded(encoded, labels, np.random.default_rng(0), words=64)
    assert [w.encoded for w in weak] == list(encoded)  # every example comes back, in order
    some_positive = False
    for w, e, row in zip(weak, encoded, logits, strict=True):
        gold = labels.index(e.example.label)
        base = torch.log_softmax(torch.as_tensor(row), dim=-1)[gold].item()
        content = {p.index for p in e.positions}
        for index, target in enumerate(w.token_labels):
            assert (target >= 0) == (index in content)
        words: dict[tuple[int, int], list[int]] = {}
        for p in e.positions:
            words.setdefault((p.segment, p.word), []).append(p.index)
        for group in words.values():
            masked = single_logits(model, with_mask(e.input_ids, group, mask_id), e.token_type_ids)
            drop = max(0.0, base - torch.log_softmax(torch.as_tensor(masked), dim=-1)[gold].item())
            for index in group:
                assert w.token_labels[index] == pytest.approx(drop / len(group), abs=1e-4)
            some_positive |= drop > 0
    assert some_positive
    assert stats.copies == sum(len({(p.segment, p.word) for p in e.positions}) for e in encoded)


def test_graded_rule_caps_the_words_probed_per_example(probe_setup: tuple) -> None:
    model, tokenizer, encoded, _ = probe_setup
    prober = Prober(model, tokenizer.mask_token_id, tokenizer.pad_token_id, CPU)
    weak, stats = prober.graded(encoded, model.config.labels, np.random.default_rng(0), words=2)
    for w in weak:
        probed_words = {(p.segment, p.word) for p in w.encoded.positions if w.token_labels[p.index] >= 0}
        all_words = {(p.segment, p.word) for p in w.encoded.positions}
        assert len(probed_words) == min(2, len(all_words))
    assert stats.copies == sum(min(2, len({(p.segment, p.word) for p in e.positions})) for e in encoded)


class MaskFlipsOddLengths(torch.nn.Module):
    """The trained model, except that a masked copy of odd length has its decision flipped (its top class pushed
    down): examples of odd length never keep a copy and need new masks every round; the others keep their first."""

    def __init__(self, inner: torch.nn.Module, mask_id: int) -> None:
        super().__init__()
        self.inner, self.mask_id, self.config = inner, mask_id, inner.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> object:
        out = self.inner(input_ids, attention_mask, token_type_ids)
        logits = out.logits.clone()  # [B, C]
        flip = (input_ids == self.mask_id).any(dim=-1) & (attention_mask.sum(dim=-1) % 2 == 1)  # [B]
        top = logits.argmax(dim=-1)  # [B]
        logits[flip, top[flip]] -= 100.0
        return dataclasses.replace(out, logits=logits)


def test_keep_redraws_masks_only_for_examples_without_a_kept_copy(probe_setup: tuple) -> None:
    model, tokenizer, encoded, logits = probe_setup
    labels = model.config.labels
    biased = MaskFlipsOddLengths(model, tokenizer.mask_token_id)
    prober = Prober(biased, tokenizer.mask_token_id, tokenizer.pad_token_id, CPU)  # type: ignore[arg-type]
    weak, stats = prober.keep(encoded, labels, len(encoded), np.random.default_rng(0), 0.5, rounds=6)
    correct = [i for i, e in enumerate(encoded) if int(logits[i].argmax()) == labels.index(e.example.label)]
    even = [i for i in correct if len(encoded[i]) % 2 == 0]
    assert even and len(even) < len(correct), "the test needs right answers of both length parities"
    ids = [w.encoded.example.example_id for w in weak]
    assert sorted(ids) == sorted(encoded[i].example.example_id for i in even)  # each kept once, in round 1
    assert stats.rounds == 6  # the other class's examples were re-drawn in every round, in vain
    assert stats.kept == len(weak) <= stats.originals_correct == len(correct)


def test_keep_stops_once_enough_examples_are_kept(probe_setup: tuple) -> None:
    model, tokenizer, encoded, _ = probe_setup
    prober = Prober(model, tokenizer.mask_token_id, tokenizer.pad_token_id, CPU)
    _, stats = prober.keep(encoded, model.config.labels, 1, np.random.default_rng(0), 0.1, rounds=8)
    assert stats.rounds == 1


def test_flip_rule_matches_a_direct_computation(probe_setup: tuple) -> None:
    model, tokenizer, encoded, logits = probe_setup
    mask_id = tokenizer.mask_token_id
    prober = Prober(model, mask_id, tokenizer.pad_token_id, CPU)
    weak, stats = prober.flip(encoded[:12], np.random.default_rng(5), rounds=2)
    assert len(weak) == 12
    flips = 0
    for i, w in enumerate(weak):
        e = w.encoded
        assert len(w.masked) == 2 and set(w.masked) <= {p.index for p in e.positions}
        original = int(logits[i].argmax())
        flipped = {
            p
            for p in w.masked
            if single_decision(model, with_mask(e.input_ids, [p], mask_id), e.token_type_ids) != original
        }
        flips += len(flipped)
        check_label_layout(e, w.token_labels, set(w.masked) - flipped, set(w.masked))
    assert stats.kept == flips and stats.copies == 2 * 12


def test_contrast_rule_matches_a_direct_computation(probe_setup: tuple) -> None:
    model, tokenizer, encoded, logits = probe_setup
    labels, mask_id = model.config.labels, tokenizer.mask_token_id
    prober = Prober(model, mask_id, tokenizer.pad_token_id, CPU)
    weak, stats = prober.contrast(encoded, labels, 30, np.random.default_rng(13), 0.3, 4)

    correct = [i for i, e in enumerate(encoded) if int(logits[i].argmax()) == labels.index(e.example.label)]
    rng = np.random.default_rng(13)
    expected = []
    for _ in range(min(4, math.ceil(30 / len(correct)))):
        for i in correct:
            mask = sample_example_mask(encoded[i], rng, 0.3)
            if mask:
                expected.append((i, mask))
    assert [(w.encoded.example.example_id, w.masked) for w in weak] == expected
    held = 0
    for w in weak:
        e = w.encoded
        original = int(logits[e.example.example_id].argmax())
        same = single_decision(model, with_mask(e.input_ids, w.masked, mask_id), e.token_type_ids) == original
        held += same
        check_label_layout(e, w.token_labels, set(w.masked) if same else set(), set(w.masked))
    assert stats.kept == held and stats.copies == len(weak)


def test_regression_keep_uses_the_tolerance_on_both_comparisons(
    tiny_encoder_dir: Path, movie_encoded: list[Encoded]
) -> None:
    from ssa_core.config import ModelConfig
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import structural_special_ids

    tokenizer = load_tokenizer(tiny_encoder_dir)
    torch.manual_seed(0)
    cfg = ModelConfig(base_model=str(tiny_encoder_dir), task="regression", max_length=64)
    model = build_model(cfg, structural_special_ids(tokenizer)).eval()
    examples = movie_encoded[:8]
    predicted = [float(single_logits(model, e.input_ids, e.token_type_ids)[0]) for e in examples]
    # Gold within 0.2 of the prediction for even rows, 0.45 away for odd rows: only even rows may be kept.
    gold = [p + (0.2 if i % 2 == 0 else 0.45) for i, p in enumerate(predicted)]
    relabelled = [
        Encoded(Example(i, i + 1, e.example.text, None, g), e.input_ids, e.token_type_ids, e.positions)
        for i, (e, g) in enumerate(zip(examples, gold, strict=True))
    ]
    prober = Prober(model, tokenizer.mask_token_id, tokenizer.pad_token_id, CPU, regression_tolerance=0.3)
    weak, stats = prober.keep(relabelled, (), len(relabelled), np.random.default_rng(0), 0.5, rounds=4)
    assert stats.originals_correct == 4
    assert {w.encoded.example.example_id for w in weak} <= {0, 2, 4, 6}
    for w in weak:
        e = w.encoded
        masked = float(single_logits(model, with_mask(e.input_ids, w.masked, tokenizer.mask_token_id))[0])
        assert abs(masked - predicted[e.example.example_id]) <= 0.3 + 1e-5


def test_same_decision_rules() -> None:
    a = np.array([0.5, 0.5, 0.5, 2.0])
    b = np.array([0.75, 0.25, 0.875, -2.0])
    assert same_decision(a, b, True, 0.25).tolist() == [True, True, False, False]
    assert same_decision(np.array([1, 0, 2]), np.array([1, 1, 2]), False, 0.3).tolist() == [True, False, True]


# ---- packing ------------------------------------------------------------------------------------------


def test_length_batches_cover_every_index_once_within_the_token_budget() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=500).tolist()
    batches = length_batches(lengths, max_tokens=1024, max_batch=40)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for batch in batches:
        assert max(lengths[i] for i in batch) * len(batch) <= 1024 and len(batch) <= 40
    assert [lengths[i] for i in seen] == sorted(lengths)


def test_packed_outputs_match_one_sequence_at_a_time(probe_setup: tuple) -> None:
    model, tokenizer, encoded, logits = probe_setup
    seqs = Sequences()
    for e in encoded:
        seqs.add(e.input_ids, e.token_type_ids)
    packed = packed_outputs(model, seqs, tokenizer.pad_token_id, 512, CPU)
    assert len(length_batches([len(e) for e in encoded], 512)) > 1
    np.testing.assert_allclose(packed, logits, atol=1e-5)
