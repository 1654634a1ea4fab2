"""Small helpers shared by the ssa_core tests: direct (one-sequence-at-a-time) model decisions."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ssa_core.model.ssa_model import SSAModel


@torch.no_grad()
def single_logits(model: SSAModel, ids: Sequence[int], types: Sequence[int] | None = None) -> torch.Tensor:
    """Logits [C] of one unpadded sequence, run on its own."""
    model.eval()
    input_ids = torch.tensor([list(ids)], dtype=torch.long)
    token_types = torch.tensor([list(types)], dtype=torch.long) if types is not None else None
    return model(input_ids, torch.ones_like(input_ids), token_types).logits[0]


def single_decision(model: SSAModel, ids: Sequence[int], types: Sequence[int] | None = None) -> int:
    return int(single_logits(model, ids, types).argmax())
