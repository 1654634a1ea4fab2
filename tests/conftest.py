"""Shared fixtures: a 2-layer copy of the pretrained MiniLM and a tiny trained SSA model folder (cached per session).

Fixtures here are shared by several test packages; add new ones, keep the existing ones' contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_TRAIN = Path("/work/shared/data/movie-sentiment/train.jsonl")
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "ssa_core" / "samples" / "sentiment"


def sentiment_train_file() -> Path:
    """The real movie-sentiment training file, or the shipped sample when /work/shared is absent."""
    return SHARED_TRAIN if SHARED_TRAIN.is_file() else SAMPLE_DIR / "train.jsonl"


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pretrained MiniLM cut to its first 2 layers, with its tokenizer, saved to a folder."""
    from transformers import AutoModel, AutoTokenizer

    from ssa_core.config import default_base_model

    out = tmp_path_factory.mktemp("tiny-encoder")
    base = default_base_model()
    AutoModel.from_pretrained(base, num_hidden_layers=2).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hybrid SSA model folder (ONNX included) trained for 1 iteration on 64 movie-sentiment rows."""
    from ssa_core.config import ModelConfig, TrainConfig
    from ssa_core.data.datasets import head, load_dataset, stratified_split
    from ssa_core.train.pipeline import train_model

    data = head(load_dataset(sentiment_train_file()), 64)
    train, dev = stratified_split(data, dev_fraction=0.25, seed=0)
    model_cfg = ModelConfig(base_model=str(tiny_encoder_dir), method="hybrid", max_length=64, labels=data.labels)
    out = tmp_path_factory.mktemp("tiny-model") / "tiny-hybrid"
    train_model(train, dev, model_cfg, TrainConfig(iterations=1, batch_size=16), out, model_id="tiny-hybrid",
                device="cpu")
    return out


def sentiment_dev_texts(rows: int = 200) -> list[str]:
    """The first `rows` texts of the movie-sentiment dev split (the shipped sample when /work/shared is absent)."""
    from ssa_core.cli.predict_io import read_items

    shared = SHARED_TRAIN.with_name("dev.jsonl")
    return [str(item) for item in read_items(shared if shared.is_file() else SAMPLE_DIR / "dev.jsonl", False)][:rows]


@pytest.fixture(scope="session")
def int8_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model with its int8 variant (agreement threshold 0.5: the 1-iteration model's scores sit
    near 0.5, so int8 flips a few labels; the threshold's own test uses the agreement recorded here)."""
    import shutil

    from ssa_core.export.quantize import add_int8_variant

    out = tmp_path_factory.mktemp("int8-model") / "tiny-int8"
    shutil.copytree(tiny_model_dir, out)
    add_int8_variant(out, sentiment_dev_texts(), min_agreement=0.5)
    return out
