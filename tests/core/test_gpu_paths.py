"""The GPU paths that can be checked on a CPU-only machine: bf16 autocast in training (off on CPU, and the training
step runs under bf16 autocast, here CPU's), ONNX Runtime IO binding (chosen only for the CUDA provider; it predicts
what session.run does), and the fp16 variant (`ssa export --quantize fp16`), whose parity check runs on the CUDA
provider where usable and on the CPU provider here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ssa_core.cli.main import main
from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.export.quantize import QuantizationRefused, add_fp16_variant, fp16_check_provider
from ssa_core.runtime.modelmeta import FP16_ONNX_FILE, SSA_FILE, ModelMeta
from ssa_core.runtime.predictor import CPU, CUDA, Predictor, bound_run, plain_run, session_runner
from tests.conftest import sentiment_dev_texts, sentiment_train_file


# ---- training: bf16 autocast -------------------------------------------------------------------------------
def test_bf16_autocast_is_off_on_cpu_and_on_for_a_bf16_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from ssa_core.train import trainer as training

    assert not training.bf16_autocast_usable(torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training.bf16_autocast_usable(torch.device("cuda"))
    assert not training.bf16_autocast_usable(torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert not training.bf16_autocast_usable(torch.device("cuda"))


def tiny_trainer(encoder: Path) -> tuple[Any, list[Any]]:
    from ssa_core.data.datasets import head, load_dataset
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, structural_special_ids
    from ssa_core.train.trainer import Trainer

    data = head(load_dataset(sentiment_train_file()), 16)
    tokenizer = load_tokenizer(encoder)
    cfg = ModelConfig(base_model=str(encoder), method="hybrid", max_length=48, labels=data.labels)
    torch.manual_seed(0)
    model = build_model(cfg, structural_special_ids(tokenizer))
    trainer = Trainer(model, TrainConfig(iterations=1, batch_size=8), tokenizer.mask_token_id,
                      tokenizer.pad_token_id or 0, torch.device("cpu"))
    encoded = encode_examples(tokenizer, data.examples, 48)
    return trainer, [(e, trainer._original_labels(e)) for e in encoded[:8]]


def test_training_step_runs_under_bf16_autocast(tiny_encoder_dir: Path) -> None:
    """On CPU the trainer trains in float32; forced on, the step runs the model and loss under (CPU) bf16 autocast
    with float32 weights and gradients, as it does on a bf16 GPU."""
    trainer, batch = tiny_trainer(tiny_encoder_dir)
    assert trainer.bf16 is False
    fp32_losses = trainer._step(batch, 0, 10)
    trainer.bf16 = True
    seen: list[torch.dtype] = []
    hook = trainer.model.classifier.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    losses = trainer._step(batch, 1, 10)
    hook.remove()
    assert seen == [torch.bfloat16]
    assert np.isfinite(losses).all() and np.isfinite(fp32_losses).all()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


# ---- serving: IO binding on CUDA ---------------------------------------------------------------------------
def test_io_binding_is_chosen_only_for_the_cuda_provider() -> None:
    assert session_runner(CUDA) is bound_run
    assert session_runner(CPU) is plain_run


def test_bound_run_gives_what_session_run_gives(tiny_model_dir: Path) -> None:
    """IO binding works on the CPU provider too, so its outputs can be compared here."""
    predictor = Predictor.load(tiny_model_dir, provider="cpu")
    assert predictor.run_session is plain_run
    encodings = predictor.encode(sentiment_dev_texts(6))
    plain = predictor.run(encodings)
    predictor.run_session = bound_run
    bound = predictor.run(encodings)
    assert plain.keys() == bound.keys()
    for name in plain:
        assert plain[name].dtype == bound[name].dtype and np.allclose(plain[name], bound[name], atol=1e-6)


# ---- export: the fp16 variant ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fp16_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp16-model") / "tiny-fp16"
    shutil.copytree(tiny_model_dir, out, ignore=shutil.ignore_patterns("model.int8.onnx"))
    add_fp16_variant(out, sentiment_dev_texts(64))
    return out


def test_fp16_variant_is_listed_checked_and_loads(fp16_model_dir: Path) -> None:
    assert fp16_check_provider() == "cpu"  # no CUDA here: the parity check ran on the CPU provider
    meta = ModelMeta.read(fp16_model_dir)
    assert [v.name for v in meta.variants] == ["fp32", "fp16"]
    fp16 = meta.variant("fp16")
    assert fp16.file == FP16_ONNX_FILE and fp16.checked_inputs == 64 and fp16.checked_on == CPU
    assert fp16.agreement is not None and fp16.agreement >= 0.999
    assert fp16.score_max_abs_diff is not None and fp16.score_max_abs_diff <= 0.01
    size = (fp16_model_dir / FP16_ONNX_FILE).stat().st_size
    assert size < 0.6 * (fp16_model_dir / "model.onnx").stat().st_size
    texts = sentiment_dev_texts(8)
    fp32 = Predictor.load(fp16_model_dir, provider="cpu").predict(texts)
    half = Predictor.load(fp16_model_dir, provider="cpu", variant="fp16").predict(texts)
    for a, b in zip(fp32, half, strict=True):
        assert a.label == b.label and abs(a.score - b.score) < 0.01
        assert [t.text for t in a.tokens or []] == [t.text for t in b.tokens or []]


def test_fp16_refused_when_the_probability_moves_too_much(fp16_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(fp16_model_dir, folder)
    (folder / FP16_ONNX_FILE).unlink()
    meta = json.loads((folder / SSA_FILE).read_text())
    del meta["variants"], meta["files"][FP16_ONNX_FILE]
    (folder / SSA_FILE).write_text(json.dumps(meta))
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(QuantizationRefused, match=r"moved by up to .* more than the allowed 1e-09 \(checked on "
                                                  r"CPUExecutionProvider\): model.fp16.onnx not written"):
        add_fp16_variant(folder, sentiment_dev_texts(16), max_score_diff=1e-9)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_export_quantize_fp16_command(fp16_model_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model"
    shutil.copytree(fp16_model_dir, folder)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in sentiment_dev_texts(24)))
    assert main(["export", str(folder), "--quantize", "fp16", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "on the CPU provider" in err and "fp16 predicted what fp32 did on 100.00% of 24 inputs" in err
    assert ModelMeta.read(folder).variant("fp16").checked_inputs == 24
    assert main(["export", str(folder), "--quantize", "fp16", "--data", str(data), "--max-score-diff", "1e-9"]) == 3
    assert "ssa export: refused:" in capsys.readouterr().err
    for bad in ("0", "1.5"):
        assert main(["export", str(folder), "--quantize", "fp16", "--data", str(data), "--max-score-diff", bad]) == 2
        assert "--max-score-diff must be in (0, 1]" in capsys.readouterr().err
