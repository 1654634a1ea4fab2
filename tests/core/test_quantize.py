"""The int8 variant (`ssa_core.export.quantize`, `ssa export --quantize int8`): written only after agreeing with fp32 on
the caller's inputs, listed in ssa.json, loadable by the runtime; a refused quantization leaves the folder as it was."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ssa_core.cli.main import main
from ssa_core.export import quantize
from ssa_core.export.quantize import (
    QuantizationRefused,
    add_int8_variant,
    agreement,
    compare,
    fp32_plans,
    quantize_dynamic_int8,
)
from ssa_core.runtime.modelmeta import INT8_ONNX_FILE, SSA_FILE, ModelMeta
from ssa_core.runtime.predictor import ModelFolderError, Prediction, Predictor
from tests.conftest import sentiment_dev_texts


def test_int8_variant_is_listed_and_loads(int8_model_dir: Path) -> None:
    meta = ModelMeta.read(int8_model_dir)
    assert [v.name for v in meta.variants] == ["fp32", "int8"]
    int8 = meta.variant("int8")
    assert int8.file == INT8_ONNX_FILE and int8.checked_inputs == len(sentiment_dev_texts())
    assert int8.agreement is not None and 0.5 <= int8.agreement <= 1.0 and int8.min_agreement == 0.5
    assert (int8_model_dir / INT8_ONNX_FILE).stat().st_size < (int8_model_dir / "model.onnx").stat().st_size / 3
    assert json.loads((int8_model_dir / SSA_FILE).read_text())["files"][INT8_ONNX_FILE]
    texts = sentiment_dev_texts(16)
    fp32 = Predictor.load(int8_model_dir, provider="cpu").predict(texts)
    quantized = Predictor.load(int8_model_dir, provider="cpu", variant="int8")
    assert quantized.variant == "int8"
    out = quantized.predict(texts)
    # the int8 graph has the same interface: every token still carries attention close to fp32's
    for a, b in zip(fp32, out, strict=True):
        assert [t.text for t in a.tokens or []] == [t.text for t in b.tokens or []]
        assert np.allclose([t.attention for t in a.tokens or []], [t.attention for t in b.tokens or []], atol=0.1)
        assert abs(a.scores["positive"] - b.scores["positive"]) < 0.05


def test_a_folder_without_int8_refuses_that_variant(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"has no int8 variant \(it has: fp32"):
        Predictor.load(tiny_model_dir, variant="int8")


def int8_free_copy(int8_model_dir: Path, folder: Path) -> Path:
    """A copy of the int8 fixture's folder without its int8 variant (as before quantizing)."""
    shutil.copytree(int8_model_dir, folder)
    (folder / INT8_ONNX_FILE).unlink()
    meta = json.loads((folder / SSA_FILE).read_text())
    del meta["variants"], meta["files"][INT8_ONNX_FILE]
    (folder / SSA_FILE).write_text(json.dumps(meta))
    return folder


def test_agreement_below_the_threshold_writes_nothing(int8_model_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    measured = ModelMeta.read(int8_model_dir).variant("int8").agreement
    assert measured is not None and measured < 1.0, "the tiny model's int8 should flip at least one label"
    folder = int8_free_copy(int8_model_dir, tmp_path / "model")
    before = sorted(p.name for p in folder.iterdir())
    # only the fully quantized graph may be tried here (the fallback plans have their own test); quantization and
    # the check are deterministic: the same inputs agree exactly as much again
    monkeypatch.setattr(quantize, "fp32_plans", lambda model: [[]])
    with pytest.raises(QuantizationRefused, match=rf"on {measured:.2%} of 200 inputs at best \(plans tried: 1,"):
        add_int8_variant(folder, sentiment_dev_texts(), min_agreement=min(1.0, measured + 0.001))
    assert sorted(p.name for p in folder.iterdir()) == before
    assert "variants" not in json.loads((folder / SSA_FILE).read_text())


def test_fp32_plans_keep_the_first_layers_feed_forward_outputs(tiny_model_dir: Path) -> None:
    plans = fp32_plans(tiny_model_dir / "model.onnx")
    layers = json.loads((tiny_model_dir / "config.json").read_text())["num_hidden_layers"]
    assert len(plans) == layers + 1 and plans[0] == []
    for count, plan in enumerate(plans):
        assert [int(re.search(r"layer\.(\d+)/output/dense/MatMul$", name).group(1)) for name in plan] == \
            list(range(count))  # type: ignore[union-attr]


def test_a_short_agreement_falls_back_to_the_first_plan_that_agrees(int8_model_dir: Path, tmp_path: Path) -> None:
    """Below the threshold, the plans are tried in order and the first one that agrees enough is kept (its count
    of fp32 MatMuls recorded); when none does, nothing is written. Each plan's agreement is measured here too."""
    measured = ModelMeta.read(int8_model_dir).variant("int8").agreement
    assert measured is not None and measured < 1.0
    threshold = min(1.0, measured + 0.001)  # the fully quantized graph (plan 0) falls short of it
    folder = int8_free_copy(int8_model_dir, tmp_path / "model")
    texts = sentiment_dev_texts()
    plans = fp32_plans(folder / "model.onnx")
    reached = []
    for index, plan in enumerate(plans):
        quantize_dynamic_int8(folder / "model.onnx", folder / f"plan{index}.onnx", plan)
        reached.append(compare(folder, f"plan{index}.onnx", texts, "cpu").agreement)
        (folder / f"plan{index}.onnx").unlink()
    assert reached[0] == measured
    first = next((i for i, value in enumerate(reached) if value >= threshold), None)
    if first is None:
        with pytest.raises(QuantizationRefused, match=rf"at best \(plans tried: {len(plans)},"):
            add_int8_variant(folder, texts, min_agreement=threshold)
        assert not (folder / INT8_ONNX_FILE).exists()
    else:
        report = add_int8_variant(folder, texts, min_agreement=threshold)
        kept = ModelMeta.read(folder).variant("int8")
        assert report.agreement == reached[first] and kept.fp32_matmuls == len(plans[first]) >= 1
        assert (folder / INT8_ONNX_FILE).is_file()


def test_export_quantize_command(int8_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model"
    shutil.copytree(int8_model_dir, folder)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in sentiment_dev_texts(40)))
    assert main(["export", str(folder), "--quantize", "int8", "--data", str(data), "--min-agreement", "0.5"]) == 0
    assert ModelMeta.read(folder).variant("int8").checked_inputs == 40
    assert "int8 predicted what fp32 did on" in capsys.readouterr().err
    assert main(["export", str(folder), "--quantize", "int8", "--data", str(data), "--min-agreement", "1.5"]) == 2
    assert "--min-agreement must be in (0, 1]" in capsys.readouterr().err


def prediction(label: str | float, p: float) -> Prediction:
    return Prediction(label=label, score=p, scores={"a": p, "b": 1 - p} if isinstance(label, str) else {},
                      tokens=None, words=None, truncated=False)


def test_agreement_counts_labels_and_regression_values_within_tolerance() -> None:
    fp32 = [prediction("a", 0.6), prediction("b", 0.3), prediction("a", 0.9), prediction("a", 0.8)]
    int8 = [prediction("a", 0.59), prediction("a", 0.51), prediction("a", 0.9), prediction("a", 0.8)]
    report = agreement(fp32, int8, regression=False)
    assert report.inputs == 4 and report.agreement == 0.75
    values = [prediction(v, v) for v in (0.0, 5.0, 10.0)]
    close = [prediction(v, v) for v in (0.1, 5.3, 10.0)]  # within 2 % of the range (0.2): 0.1 and 10.0
    assert agreement(values, close, regression=True).agreement == pytest.approx(2 / 3)


def test_export_again_checks_parity_shows_progress_and_drops_the_stale_int8(
        int8_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model"
    shutil.copytree(int8_model_dir, folder)
    assert main(["export", str(folder)]) == 0
    shown = capsys.readouterr().err
    assert re.search(r"exported \S* 3/3", shown) and "(parity max abs diff: logits" in shown
    meta = json.loads((folder / SSA_FILE).read_text())
    # int8 was checked against the previous model.onnx: it goes with it
    assert "variants" not in meta and INT8_ONNX_FILE not in meta["files"] and not (folder / INT8_ONNX_FILE).exists()
    assert Predictor.load(folder).predict(["a fine film"])[0].label in ("negative", "positive")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
