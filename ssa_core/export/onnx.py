"""ONNX export of an SSAModel (logits, importance p_i, attention a_i) with a parity check against PyTorch."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssa_core.model.ssa_model import SSAModel
from ssa_core.model.tokenize import pad_batch
from ssa_core.runtime.modelmeta import ATTENTION, IMPORTANCE, INPUT_IDS, LOGITS, ONNX_INPUTS, ONNX_OUTPUTS


@dataclass(frozen=True)
class ExportSpec:
    """The exported graph's interface and the tolerances it must meet."""

    inputs: tuple[str, ...] = ONNX_INPUTS
    outputs: tuple[str, ...] = ONNX_OUTPUTS
    opset: int = 17
    tolerance: dict[str, float] = field(
        default_factory=lambda: {LOGITS: 1e-4, IMPORTANCE: 1e-5, ATTENTION: 1e-5}
    )

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in self.inputs}
        axes[LOGITS] = {0: "batch"}
        axes[IMPORTANCE] = {0: "batch", 1: "sequence"}
        axes[ATTENTION] = {0: "batch", 1: "sequence"}
        return axes


class ParityError(RuntimeError):
    """The ONNX graph disagrees with PyTorch beyond tolerance; lists every mismatch."""


class _Exportable(torch.nn.Module):
    def __init__(self, model: SSAModel, with_types: bool) -> None:
        super().__init__()
        self.model = model
        self.with_types = with_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids, attention_mask, token_type_ids if self.with_types else None)
        return out.logits, out.importance, out.attention  # [B, C], [B, T], [B, T]


def export_onnx(model: SSAModel, path: Path, with_token_types: bool, spec: ExportSpec | None = None) -> ExportSpec:
    """Write `model` as ONNX at `path` (dynamic batch and length). Returns the spec actually used."""
    spec = spec or ExportSpec()
    if not with_token_types:
        spec = ExportSpec(inputs=spec.inputs[:2], outputs=spec.outputs, opset=spec.opset, tolerance=spec.tolerance)
    wrapper = _Exportable(model.cpu().eval(), with_token_types)
    sample = pad_batch([[1, 5, 6, 2], [1, 7, 2]], [[0] * 4, [0] * 3] if with_token_types else None,
                       0)
    args = tuple(sample[name] for name in spec.inputs)
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python-bool conversions in transformers' mask helpers and about index ops;
        # the parity check on real inputs of several shapes is what proves the graph, so keep the CLI quiet.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, str(tmp), input_names=list(spec.inputs), output_names=list(spec.outputs),
            dynamic_axes=spec.dynamic_axes(), opset_version=spec.opset, dynamo=False,
        )
    tmp.replace(path)
    return spec


def check_parity(
    model: SSAModel,
    onnx_path: Path,
    batches: Sequence[dict[str, torch.Tensor]],
    spec: ExportSpec,
) -> dict[str, float]:
    """Compare PyTorch and ONNX Runtime (CPU) on real batches; raise ParityError listing every mismatch.

    Returns the largest absolute difference per output."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(spec.outputs, 0.0)
    problems = []
    model = model.cpu().eval()
    for number, batch in enumerate(batches):
        with torch.no_grad():
            out = model(**{k: v for k, v in batch.items() if k in spec.inputs})
        expected = {LOGITS: out.logits, IMPORTANCE: out.importance, ATTENTION: out.attention}
        feeds = {name: batch[name].numpy().astype(np.int64) for name in spec.inputs}
        got = dict(zip(spec.outputs, session.run(list(spec.outputs), feeds), strict=True))
        for name in spec.outputs:
            diff = float(np.max(np.abs(expected[name].numpy() - got[name]))) if got[name].size else 0.0
            worst[name] = max(worst[name], diff)
            if diff > spec.tolerance[name]:
                shape = tuple(batch[INPUT_IDS].shape)
                problems.append(f"batch {number} {shape}: {name} differs by {diff:.2e} > {spec.tolerance[name]:.0e}")
    if problems:
        raise ParityError("ONNX export failed its parity check:\n" + "\n".join(problems))
    return worst
