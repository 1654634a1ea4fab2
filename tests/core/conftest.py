"""Fixtures of the ssa_core tests: real movie-sentiment slices, a trained tiny model, a RoBERTa-style tokenizer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.datasets import Dataset, head, load_dataset

MOVIES = Path("/work/shared/data/movie-sentiment")
TRAIN_ROWS = 64
DEV_ROWS = 32


@dataclass(frozen=True)
class TrainedRun:
    """One finished train_model run, with everything needed to repeat it exactly."""

    out_dir: Path
    train: Dataset
    dev: Dataset
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    metrics: dict


def movie_split(name: str, rows: int) -> Dataset:
    return head(load_dataset(MOVIES / f"{name}.jsonl"), rows)


@pytest.fixture(scope="session")
def movie_train() -> Dataset:
    return movie_split("train", TRAIN_ROWS)


@pytest.fixture(scope="session")
def movie_dev() -> Dataset:
    return movie_split("dev", DEV_ROWS)


def hybrid_configs(encoder: Path, labels: tuple[str, ...]) -> tuple[ModelConfig, TrainConfig]:
    """The configuration of the shared trained run: 2-layer MiniLM, max length 64, 2 iterations."""
    model_cfg = ModelConfig(base_model=str(encoder), method="hybrid", max_length=64, labels=labels)
    return model_cfg, TrainConfig(iterations=2, batch_size=16, learning_rate=1e-4, seed=7)


@pytest.fixture(scope="session")
def trained_run(
    tiny_encoder_dir: Path, movie_train: Dataset, movie_dev: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> TrainedRun:
    """A hybrid model trained for 2 iterations on 64 movie-sentiment rows: the full model folder."""
    from ssa_core.train.pipeline import train_model

    model_cfg, train_cfg = hybrid_configs(tiny_encoder_dir, movie_train.labels)
    out = tmp_path_factory.mktemp("trained") / "tiny-hybrid"
    result = train_model(movie_train, movie_dev, model_cfg, train_cfg, out, device="cpu", model_id="tiny-hybrid")
    return TrainedRun(out, movie_train, movie_dev, model_cfg, train_cfg, result.metrics.to_dict())


@pytest.fixture(scope="session")
def trained_model_dir(trained_run: TrainedRun) -> Path:
    return trained_run.out_dir


ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def build_roberta_tokenizer(folder: Path, texts: list[str]) -> None:
    """Train a tiny byte-level BPE locally (no hub access) and save it as a RoBERTa tokenizer with `<mask>`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=list(ROBERTA_SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    ids = {token: bpe.token_to_id(token) for token in ("<s>", "</s>")}
    assert ids["<s>"] is not None and ids["</s>"] is not None
    bpe.post_processor = processors.RobertaProcessing(("</s>", ids["</s>"]), ("<s>", ids["<s>"]), trim_offsets=True)
    wrapped = RobertaTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    wrapped.save_pretrained(folder)


def build_roberta_encoder(folder: Path, vocab_size: int) -> None:
    """A small randomly initialised RoBERTa encoder whose vocabulary matches the tiny BPE."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    RobertaModel(config).save_pretrained(folder)


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local RoBERTa-style model folder: tiny BPE tokenizer (`<s>`, `</s>`, `<pad>`, `<mask>`) + tiny encoder."""
    folder = tmp_path_factory.mktemp("tiny-roberta")
    lines = (MOVIES / "train.jsonl").read_text(encoding="utf-8").splitlines()[:400]
    build_roberta_tokenizer(folder, [json.loads(line)["text"] for line in lines])
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    build_roberta_encoder(folder, len(vocab))
    return folder


@pytest.fixture(scope="session")
def movie_encoded(tiny_encoder_dir: Path) -> list:
    """300 real movie-sentiment sentences encoded with the MiniLM tokenizer (max length 128)."""
    from ssa_core.model.tokenize import encode_examples, load_tokenizer

    examples = movie_split("train", 300).examples
    return encode_examples(load_tokenizer(tiny_encoder_dir), examples, 128)
