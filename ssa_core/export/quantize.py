"""The int8 and fp16 variants of a model folder. int8: dynamic quantization of model.onnx (int8 weights of the
MatMul/Gemm nodes, per output channel; activations quantized on the fly), keeping the most sensitive projections in
fp32 only where the agreement check needs it (`fp32_plans`); fp16: model.onnx converted to float16 (for the
CUDA provider). Each is kept only when its predictions agree with fp32's on the caller's data. Torch-free: ONNX
Runtime's quantization and float16 tools and the runtime only.

The candidate is written under a temporary name, run beside fp32, and only then renamed to model.int8.onnx (or
model.fp16.onnx) and listed in ssa.json (`variants.int8` / `variants.fp16`, with the measured agreement), so a
refused or interrupted conversion leaves the folder as it was."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssa_core.runtime.modelmeta import FP16_ONNX_FILE, INT8_ONNX_FILE, ONNX_FILE, SSA_FILE, VariantInfo, file_digest
from ssa_core.runtime.predictor import CUDA, Item, Prediction, Predictor, cuda_usable
from ssa_core.vocabulary import Provider

DEFAULT_MIN_AGREEMENT = 0.99
# Regression: an int8 prediction agrees when it is within this share of the fp32 predictions' range.
REGRESSION_TOLERANCE = 0.02
CHECK_BATCH = 32


@dataclass(frozen=True)
class AgreementReport:
    """How int8 compares with fp32 on the checked inputs."""

    inputs: int
    agreement: float  # share of inputs with the same label (regression: within the tolerance)
    attention_max_abs_diff: float
    score_mean_abs_diff: float  # the predicted class's probability (regression: the value)
    score_max_abs_diff: float = 0.0  # its largest difference over the checked inputs


class QuantizationRefused(ValueError):
    """int8 agreed with fp32 on too few inputs (`report`, None when there was nothing to check); the message has the
    measured agreement. Nothing was written."""

    def __init__(self, message: str, report: AgreementReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def agreement(fp32: Sequence[Prediction], int8: Sequence[Prediction], regression: bool) -> AgreementReport:
    """Compare two variants' predictions of the same inputs, in the same order."""
    if regression:
        values = np.array([float(p.label) for p in fp32])
        spread = float(values.max() - values.min()) if len(values) else 0.0
        tolerance = REGRESSION_TOLERANCE * (spread or 1.0)
        same = [abs(float(a.label) - float(b.label)) <= tolerance for a, b in zip(fp32, int8, strict=True)]
    else:
        same = [a.label == b.label for a, b in zip(fp32, int8, strict=True)]
    attention = [max((abs((s.attention or 0.0) - (t.attention or 0.0)) for s, t in
                      zip(a.tokens or [], b.tokens or [], strict=True)), default=0.0)
                 for a, b in zip(fp32, int8, strict=True)]
    scores = [abs(a.scores.get(str(a.label), a.score) - b.scores.get(str(a.label), b.score))
              for a, b in zip(fp32, int8, strict=True)]
    return AgreementReport(inputs=len(same), agreement=float(np.mean(same)) if same else 0.0,
                           attention_max_abs_diff=max(attention, default=0.0),
                           score_mean_abs_diff=float(np.mean(scores)) if scores else 0.0,
                           score_max_abs_diff=max(scores, default=0.0))


# The feed-forward output projection of encoder layer N (BERT / MiniLM / RoBERTa: layer.N/output/dense, DistilBERT:
# layer.N/ffn/lin2): its input is the GELU output, whose few large activations (outliers) leave the other values
# little resolution under per-tensor dynamic quantization, so these are the MatMuls int8 hurts most.
FFN_OUTPUT = re.compile(r"layer\.(\d+)/(?:output/dense|ffn/lin2)/MatMul$")


def fp32_plans(model: Path) -> list[list[str]]:
    """Which MatMuls to keep in fp32, in the order they are tried: none, then the feed-forward output projections of
    the first 1, 2, ... encoder layers (the earlier a layer, the more of the network its error passes through)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    by_layer: dict[int, list[str]] = {}
    for node in graph.node:
        found = FFN_OUTPUT.search(node.name) if node.op_type == "MatMul" else None
        if found:
            by_layer.setdefault(int(found.group(1)), []).append(node.name)
    layers = sorted(by_layer)
    return [[name for layer in layers[:count] for name in by_layer[layer]] for count in range(len(layers) + 1)]


def quantize_dynamic_int8(source: Path, target: Path, keep_fp32: Sequence[str] = ()) -> None:
    """Dynamic quantization: int8 weights per output channel, activations quantized at run time (their scale comes
    from each run's tensor); the nodes named in `keep_fp32` stay as they are. ONNX Runtime's advice to pre-process the
    graph first is silenced: on these graphs its symbolic shape inference does not complete, and the plain graph
    quantizes to the same agreement."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=list(keep_fp32))
    finally:
        logging.disable(logging.NOTSET)


def add_int8_variant(model_dir: Path, items: Sequence[Item], *, min_agreement: float = DEFAULT_MIN_AGREEMENT,
                     progress: Callable[[int], object] | None = None) -> AgreementReport:
    """Quantize `model_dir`'s model.onnx, check the result against fp32 on `items`, and keep it as the int8 variant
    (model.int8.onnx, listed in ssa.json) when at least `min_agreement` of them agree. Where the fully quantized graph
    falls short, the plans of `fp32_plans` are tried in turn (each keeps more feed-forward projections in fp32) and the
    first that agrees enough is kept; ssa.json records how many MatMuls it kept in fp32. When none does, raise
    QuantizationRefused (with the best plan's report) and leave the folder unchanged. `progress(n)` is called after
    each batch of n inputs of the first check."""
    if not items:
        raise QuantizationRefused("no inputs to check the int8 model against fp32")
    model_dir = Path(model_dir)
    candidate = model_dir / f".{INT8_ONNX_FILE}.candidate"
    fp32_out = predict_all(Predictor.load(model_dir, provider="cpu"), items)
    best: AgreementReport | None = None
    try:
        for tried, keep in enumerate(fp32_plans(model_dir / ONNX_FILE)):
            quantize_dynamic_int8(model_dir / ONNX_FILE, candidate, keep)
            int8 = Predictor.load(model_dir, provider="cpu", onnx_file=candidate.name)
            report = agreement(fp32_out, predict_all(int8, items, progress if tried == 0 else None),
                               regression=int8.meta.task == "regression")
            if report.agreement >= min_agreement:
                candidate.replace(model_dir / INT8_ONNX_FILE)
                record_variant(model_dir, VariantInfo(
                    "int8", INT8_ONNX_FILE, agreement=round(report.agreement, 6), checked_inputs=report.inputs,
                    min_agreement=min_agreement, attention_max_abs_diff=round(report.attention_max_abs_diff, 6),
                    fp32_matmuls=len(keep)))
                return report
            best = report if best is None or report.agreement > best.agreement else best
        assert best is not None
        raise QuantizationRefused(
            f"int8 predicted what fp32 did on {best.agreement:.2%} of {best.inputs} inputs at best (plans tried: "
            f"{tried + 1}, keeping up to {len(keep)} feed-forward projections in fp32), below the required "
            f"{min_agreement:.2%}: {INT8_ONNX_FILE} not written", best)
    finally:
        candidate.unlink(missing_ok=True)


def predict_all(predictor: Predictor, items: Sequence[Item], progress: Callable[[int], object] | None = None
                ) -> list[Prediction]:
    """`predictor`'s predictions of `items` (tokens and attention, no words), CHECK_BATCH at a time."""
    out: list[Prediction] = []
    for start in range(0, len(items), CHECK_BATCH):
        chunk = items[start : start + CHECK_BATCH]
        out += predictor.predict(chunk, return_words=False)
        if progress is not None:
            progress(len(chunk))
    return out


def compare(model_dir: Path, candidate: str, items: Sequence[Item], provider: Provider,
            progress: Callable[[int], object] | None = None) -> AgreementReport:
    """fp32 (model.onnx) and the folder's file `candidate` predict `items` on `provider`; their agreement."""
    fp32 = Predictor.load(model_dir, provider=provider)
    other = Predictor.load(model_dir, provider=provider, onnx_file=candidate)
    return agreement(predict_all(fp32, items), predict_all(other, items, progress),
                     regression=fp32.meta.task == "regression")


# ---- fp16 ------------------------------------------------------------------------------------------------
# fp16 must predict fp32's label on every checked input but this share, and the predicted class's probability may
# move by at most this much on any of them (regression: the value, in the fp32 predictions' range as for int8).
DEFAULT_FP16_MIN_AGREEMENT = 0.999
DEFAULT_FP16_MAX_SCORE_DIFF = 0.01


def convert_fp16(source: Path, target: Path) -> None:
    """model.onnx with float16 weights and activations; inputs and outputs keep their types (keep_io_types), so the
    runtime feeds and reads it exactly like fp32. ONNX Runtime's own converter (no extra dependency)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    logging.disable(logging.WARNING)
    try:
        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    finally:
        logging.disable(logging.NOTSET)
    onnx.save(model, str(target))


def fp16_check_provider() -> Provider:
    """Where the fp16 parity check runs: the CUDA provider when this host can use it (where fp16 is served), else
    the CPU provider (ONNX Runtime runs the float16 graph there too, inserting casts where a kernel lacks float16)."""
    return "cuda" if cuda_usable() else "cpu"


def add_fp16_variant(model_dir: Path, items: Sequence[Item], *,
                     min_agreement: float = DEFAULT_FP16_MIN_AGREEMENT,
                     max_score_diff: float = DEFAULT_FP16_MAX_SCORE_DIFF,
                     progress: Callable[[int], object] | None = None) -> AgreementReport:
    """Convert `model_dir`'s model.onnx to float16, check it against fp32 on `items` (label agreement at least
    `min_agreement` and the predicted class's probability within `max_score_diff` on every input), and keep it as the
    fp16 variant (model.fp16.onnx, listed in ssa.json with the provider the check ran on); otherwise raise
    QuantizationRefused and leave the folder unchanged."""
    if not items:
        raise QuantizationRefused("no inputs to check the fp16 model against fp32")
    model_dir = Path(model_dir)
    candidate = model_dir / f".{FP16_ONNX_FILE}.candidate"
    provider = fp16_check_provider()
    try:
        convert_fp16(model_dir / ONNX_FILE, candidate)
        report = compare(model_dir, candidate.name, items, provider, progress)
        checked_on = CUDA if provider == "cuda" else "CPUExecutionProvider"
        failed = []
        if report.agreement < min_agreement:
            failed.append(f"fp16 predicted what fp32 did on {report.agreement:.2%} of {report.inputs} inputs, below "
                          f"the required {min_agreement:.2%}")
        if report.score_max_abs_diff > max_score_diff:
            failed.append(f"the predicted class's probability moved by up to {report.score_max_abs_diff:.4f}, more "
                          f"than the allowed {max_score_diff:g}")
        if failed:
            raise QuantizationRefused("; ".join(failed) + f" (checked on {checked_on}): {FP16_ONNX_FILE} not written",
                                      report)
        candidate.replace(model_dir / FP16_ONNX_FILE)
        record_variant(model_dir, VariantInfo(
            "fp16", FP16_ONNX_FILE, agreement=round(report.agreement, 6), checked_inputs=report.inputs,
            min_agreement=min_agreement, attention_max_abs_diff=round(report.attention_max_abs_diff, 6),
            score_max_abs_diff=round(report.score_max_abs_diff, 6), checked_on=checked_on))
        return report
    finally:
        candidate.unlink(missing_ok=True)


def record_variant(model_dir: Path, variant: VariantInfo) -> None:
    """List `variant` in ssa.json (with its file's digest), replacing the file atomically."""
    path = model_dir / SSA_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("variants", {})[variant.name] = variant.to_dict()
    meta.setdefault("files", {})[variant.file] = file_digest(model_dir / variant.file)
    scratch = path.with_name(f".{SSA_FILE}.tmp")
    scratch.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    os.replace(scratch, path)
