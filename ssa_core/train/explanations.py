"""How good an explanation is: selectivity of a weight map and ERASER-style faithfulness of a token ranking.

Selectivity (of weights over a sentence's real wordpieces): normalised entropy (1.0 = uniform) and the share of the
weight on the top 20 % of wordpieces (0.20 = uniform). Faithfulness (of a ranking, most important first): for a
fraction f of the real wordpieces, comprehensiveness = p(c | x) − p(c | x without the top f) and sufficiency =
p(c | x) − p(c | only the top f), where c is the class predicted on x; AOPC = the mean comprehensiveness over the
bins 1/5/10/20/50 %. Deleted wordpieces are removed from the input (special tokens stay), never masked. Every
measurement runs through the packed prober's length-sorted batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ssa_core.model.ssa_model import SSAModel
from ssa_core.model.tokenize import Encoded, pad_batch
from ssa_core.records import ExplanationScores
from ssa_core.train.probing import Sequences, length_batches, originals_of, packed_outputs, word_groups

FRACTIONS = (0.1, 0.2, 0.5)
AOPC_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)
TOP_SHARE = 0.2


@dataclass(frozen=True)
class Selectivity:
    entropy: float      # mean normalised entropy over sentences with >= 2 real wordpieces (1.0 = uniform)
    top20_share: float  # mean share of the weight on the top 20 % of wordpieces (0.20 = uniform)


@dataclass(frozen=True)
class Faithfulness:
    comprehensiveness: dict[str, float]  # fraction ("0.2") -> mean drop of p(c) when the top fraction is deleted
    sufficiency: dict[str, float]        # fraction -> mean drop of p(c) when only the top fraction is kept
    aopc: float                          # mean comprehensiveness over AOPC_BINS


def top_count(n: int, fraction: float) -> int:
    """How many of n wordpieces a fraction covers (at least 1)."""
    return min(n, max(1, round(fraction * n)))


def selectivity(weights: Sequence[np.ndarray]) -> Selectivity:
    """weights: one [n_i] array per sentence, over its real wordpieces."""
    entropies, shares = [], []
    for w in weights:
        if len(w) < 2 or w.sum() <= 0:
            continue
        p = w / w.sum()
        nz = p[p > 0]
        entropies.append(float(-(nz * np.log(nz)).sum() / math.log(len(p))))
        shares.append(float(np.sort(p)[::-1][: top_count(len(p), TOP_SHARE)].sum()))
    return Selectivity(float(np.mean(entropies)) if entropies else 1.0, float(np.mean(shares)) if shares else 0.0)


def ranking(weights: np.ndarray) -> np.ndarray:
    """Indices into the real wordpieces, highest weight first (ties: earlier position first)."""
    return np.argsort(-weights, kind="stable")


def without(encoded: Encoded, drop: set[int]) -> tuple[list[int], list[int] | None]:
    """The example's ids (and types) with the sequence positions in `drop` removed."""
    keep = [i for i in range(len(encoded)) if i not in drop]
    types = [encoded.token_type_ids[i] for i in keep] if encoded.token_type_ids is not None else None
    return [encoded.input_ids[i] for i in keep], types


def probabilities(model: SSAModel, seqs: Sequences, pad_id: int, device: torch.device, max_tokens: int) -> np.ndarray:
    """[N, C] class probabilities in input order."""
    return packed_outputs(model, seqs, pad_id, max_tokens, device, take=lambda x: x.float().softmax(dim=-1))


def faithfulness(
    model: SSAModel,
    examples: Sequence[Encoded],
    rankings: Sequence[np.ndarray],
    pad_id: int,
    device: torch.device,
    max_tokens: int = 16384,
    fractions: Sequence[float] = FRACTIONS,
    aopc: bool = True,
) -> Faithfulness:
    """ERASER comprehensiveness / sufficiency at `fractions` (and AOPC over AOPC_BINS unless aopc is False; then
    it reads 0) of one ranking per example.

    rankings[i]: indices into examples[i].positions, most important first."""
    base = probabilities(model, originals_of(examples), pad_id, device, max_tokens)  # [N, C]
    predicted = base.argmax(axis=-1)  # [N]
    seqs, owner, kind = Sequences(), [], []
    deletion_fractions = sorted(set(fractions) | (set(AOPC_BINS) if aopc else set()))
    for i, (e, order) in enumerate(zip(examples, rankings, strict=True)):
        positions = np.asarray([p.index for p in e.positions])
        if len(positions) == 0:
            continue
        for f in deletion_fractions:
            top = set(positions[order[: top_count(len(positions), f)]].tolist())
            seqs.add(*without(e, top))
            owner.append(i)
            kind.append(("comp", f))
        for f in fractions:
            rest = set(positions[order[top_count(len(positions), f) :]].tolist())
            seqs.add(*without(e, rest))
            owner.append(i)
            kind.append(("suff", f))
    probs = probabilities(model, seqs, pad_id, device, max_tokens) if owner else np.zeros((0, base.shape[1]))
    drops: dict[tuple[str, float], list[float]] = {}
    for row, i, key in zip(probs, owner, kind, strict=True):
        c = predicted[i]
        drops.setdefault(key, []).append(float(base[i, c] - row[c]))

    def mean(key: tuple[str, float]) -> float:
        return float(np.mean(drops[key])) if drops.get(key) else 0.0

    return Faithfulness(
        {str(f): mean(("comp", f)) for f in fractions},
        {str(f): mean(("suff", f)) for f in fractions},
        float(np.mean([mean(("comp", f)) for f in AOPC_BINS])) if aopc else 0.0,
    )


@torch.inference_mode()
def served_attention(
    model: SSAModel, examples: Sequence[Encoded], pad_id: int, device: torch.device, max_tokens: int = 16384
) -> list[np.ndarray]:
    """The SSA layer's weights a_i over each example's real wordpieces (the weights that pooled its logits)."""
    model.eval()
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for batch_index in length_batches([len(e) for e in examples], max_tokens):
        chosen = [examples[i] for i in batch_index]
        types = [e.token_type_ids for e in chosen] if chosen[0].token_type_ids is not None else None
        batch = pad_batch([e.input_ids for e in chosen], types, pad_id)
        attention = model(**{k: v.to(device) for k, v in batch.items()}).attention.float().cpu().numpy()  # [b, T]
        for row, i in zip(attention, batch_index, strict=True):
            out[i] = row[[p.index for p in examples[i].positions]]
    return out


def occlusion_weights(
    model: SSAModel, examples: Sequence[Encoded], pad_id: int, device: torch.device, max_tokens: int = 16384
) -> list[np.ndarray]:
    """Leave-one-word-out reference: each word deleted in a copy of its own; a wordpiece's weight is its word's drop
    of p(predicted class) (one extra forward pass per word)."""
    base = probabilities(model, originals_of(examples), pad_id, device, max_tokens)
    predicted = base.argmax(axis=-1)
    seqs, owner, groups = Sequences(), [], []
    for i, e in enumerate(examples):
        for group in word_groups(e):
            seqs.add(*without(e, set(group)))
            owner.append(i)
            groups.append(group)
    probs = probabilities(model, seqs, pad_id, device, max_tokens) if owner else np.zeros((0, base.shape[1]))
    weights = [dict.fromkeys((p.index for p in e.positions), 0.0) for e in examples]
    for row, i, group in zip(probs, owner, groups, strict=True):
        for index in group:
            weights[i][index] = float(base[i, predicted[i]] - row[predicted[i]])
    return [np.asarray([w[p.index] for p in e.positions]) for w, e in zip(weights, examples, strict=True)]


def random_rankings(examples: Sequence[Encoded], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.permutation(len(e.positions)) for e in examples]


def attention_scores(
    model: SSAModel, examples: Sequence[Encoded], pad_id: int, device: torch.device, max_tokens: int = 16384
) -> ExplanationScores:
    """Selectivity and comprehensiveness / sufficiency @20 % of the served attention (and random's comprehensiveness
    @20 % as the floor it must clear), for metrics.json and the model card."""
    weights = served_attention(model, examples, pad_id, device, max_tokens)
    sel = selectivity(weights)
    served = faithfulness(model, examples, [ranking(w) for w in weights], pad_id, device, max_tokens,
                          fractions=(TOP_SHARE,), aopc=False)
    floor = faithfulness(model, examples, random_rankings(examples), pad_id, device, max_tokens,
                         fractions=(TOP_SHARE,), aopc=False)
    return ExplanationScores(len(examples), round(sel.entropy, 4), round(sel.top20_share, 4),
                             round(served.comprehensiveness["0.2"], 4), round(served.sufficiency["0.2"], 4),
                             round(floor.comprehensiveness["0.2"], 4))
