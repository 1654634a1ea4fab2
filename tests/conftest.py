"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer copy of the pretrained MiniLM encoder plus its tokenizer (fast to train and export)."""
    from transformers import AutoModel, AutoTokenizer

    from ssa_core.config import default_base_model

    folder = tmp_path_factory.mktemp("tiny-encoder")
    base = default_base_model()
    AutoModel.from_pretrained(base, num_hidden_layers=2).save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder
