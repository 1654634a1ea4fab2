"""`ssa export`: model.onnx again from a folder's weights (parity-checked; needs torch), or with `--quantize int8`
(or fp16) that variant beside it, kept only when it agrees with fp32 on the given data (torch-free)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ssa_core.cli.predict_io import read_items
from ssa_core.cli.progress import console, progress_bar
from ssa_core.runtime.modelmeta import FP16_ONNX_FILE, INT8_ONNX_FILE, ONNX_FILE, ModelMeta

if TYPE_CHECKING:
    from ssa_core.export.quantize import AgreementReport

# exit status when the int8 or fp16 variant agreed too little with fp32 (2 stays "bad arguments or files")
REFUSED = 3
STAGES = ("loading the weights", "exporting ONNX", "parity check against PyTorch")


def sample_dev_file() -> Path:
    return Path(__file__).parents[1] / "samples" / "sentiment" / "dev.jsonl"


def run_export(args: argparse.Namespace) -> int:
    model_dir: Path = args.model
    meta = ModelMeta.read(model_dir)
    if args.data is None and meta.pair:
        raise ValueError("this model takes text pairs: give --data with pairs for the check")
    data: Path = args.data or sample_dev_file()
    if args.quantize == "int8":
        return quantize(model_dir, data, meta.pair, args.min_agreement)
    if args.quantize == "fp16":
        return to_fp16(model_dir, data, meta.pair, args.min_agreement, args.max_score_diff)
    return reexport(model_dir, data)


def reexport(model_dir: Path, data: Path) -> int:
    from ssa_core.data.datasets import load_dataset
    from ssa_core.export.folder import reexport as export_again

    dataset = load_dataset(data)
    with progress_bar() as bar:
        task = bar.add_task("export", total=len(STAGES))

        def on_stage(name: str) -> None:
            bar.update(task, description=name, completed=STAGES.index(name) if name in STAGES else None)

        parity = export_again(model_dir, dataset, on_stage)
        bar.update(task, description="exported", completed=len(STAGES))
    console.print(f"exported {model_dir / ONNX_FILE} (parity max abs diff: "
                  + ", ".join(f"{k} {v:.1e}" for k, v in parity.items()) + ")")
    return 0


def checked_variant(variant: str, count: int, add: Callable[[Callable[[int], object]], AgreementReport]
                    ) -> AgreementReport | None:
    """Run `add` (which writes the variant after checking it against fp32 on `count` inputs) under a progress bar;
    None when the check refused the variant (said on the console)."""
    from ssa_core.export.quantize import QuantizationRefused

    try:
        with progress_bar() as bar:
            task = bar.add_task(f"{variant} vs fp32", total=count)
            return add(lambda n: bar.advance(task, n))
    except QuantizationRefused as exc:
        console.print(f"ssa export: refused: {exc}")
        return None


def quantize(model_dir: Path, data: Path, pair: bool, min_agreement: float | None) -> int:
    from ssa_core.export.quantize import DEFAULT_MIN_AGREEMENT, add_int8_variant

    min_agreement = DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement
    if not 0.0 < min_agreement <= 1.0:
        raise ValueError("--min-agreement must be in (0, 1]")
    items = read_items(data, pair)
    console.print(f"quantizing {model_dir / ONNX_FILE} to int8; checking it against fp32 on {len(items)} inputs of "
                  f"{data.name}")
    report = checked_variant("int8", len(items), lambda progress: add_int8_variant(
        model_dir, items, min_agreement=min_agreement, progress=progress))
    if report is None:
        return REFUSED
    kept = ModelMeta.read(model_dir).variant("int8").fp32_matmuls or 0
    console.print(f"wrote {model_dir / INT8_ONNX_FILE}: int8 predicted what fp32 did on {report.agreement:.2%} of "
                  f"{report.inputs} inputs (required {min_agreement:.2%}); attention differs by at most "
                  f"{report.attention_max_abs_diff:.1e}"
                  + (f"; {kept} feed-forward MatMuls kept in fp32 to agree enough" if kept else ""))
    return 0


def to_fp16(model_dir: Path, data: Path, pair: bool, min_agreement: float | None, max_score_diff: float) -> int:
    from ssa_core.export.quantize import DEFAULT_FP16_MIN_AGREEMENT, add_fp16_variant, fp16_check_provider

    min_agreement = DEFAULT_FP16_MIN_AGREEMENT if min_agreement is None else min_agreement
    if not 0.0 < min_agreement <= 1.0:
        raise ValueError("--min-agreement must be in (0, 1]")
    if not 0.0 < max_score_diff <= 1.0:
        raise ValueError("--max-score-diff must be in (0, 1]")
    items = read_items(data, pair)
    console.print(f"converting {model_dir / ONNX_FILE} to fp16; checking it against fp32 on {len(items)} inputs of "
                  f"{data.name} on the {fp16_check_provider().upper()} provider")
    report = checked_variant("fp16", len(items), lambda progress: add_fp16_variant(
        model_dir, items, min_agreement=min_agreement, max_score_diff=max_score_diff, progress=progress))
    if report is None:
        return REFUSED
    console.print(f"wrote {model_dir / FP16_ONNX_FILE}: fp16 predicted what fp32 did on {report.agreement:.2%} of "
                  f"{report.inputs} inputs (required {min_agreement:.2%}); the predicted class's probability moved by "
                  f"at most {report.score_max_abs_diff:.1e} (allowed {max_score_diff:g})")
    return 0
