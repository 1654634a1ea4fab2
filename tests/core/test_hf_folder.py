"""Trained folders are Hugging Face folders: `AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)` gives our model (logits and SSA attention to 1e-5) for every variant, with no weight missing
or newly initialised; a baseline BERT folder loads without remote code; config.json carries the labels; README.md is
a Hub model card; folders in the earlier layout (and format-1 ssa.json) still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForSequenceClassification, BertForSequenceClassification

from ssa_core.config import ModelConfig, TrainConfig, default_base_model
from ssa_core.data.datasets import Dataset
from ssa_core.export.card import SHIPPED_ENCODER, base_model_license, hub_base_model
from ssa_core.export.folder import load_trained
from ssa_core.model.hf_folder import HF_CLASS, MODELING_FILE, is_hf_layout
from ssa_core.model.tokenize import batch_tensors, encode_examples
from ssa_core.runtime.modelmeta import CARD_FILE, WEIGHTS_FILE, read_card
from ssa_core.train.pipeline import train_model
from tests.core.conftest import movie_split

TOLERANCE = 1e-5
# (folder name, method, extra ModelConfig settings): layer covers the released pooling rule (p_i over the kept set,
# no pooler transform), hybrid the defaults.
VARIANTS = {
    "hf-baseline": ("baseline", {}),
    "hf-co": ("co", {}),
    "hf-layer": ("layer", {"attention_scores": "probability", "pool_transform": "none"}),
    "hf-hybrid": ("hybrid", {}),
}


@pytest.fixture(scope="module")
def small_splits() -> tuple[Dataset, Dataset]:
    return movie_split("train", 24), movie_split("dev", 12)


def train_variant(encoder: Path, out: Path, method: str, extra: dict[str, Any],
                  splits: tuple[Dataset, Dataset]) -> Path:
    train, dev = splits
    cfg = ModelConfig(base_model=str(encoder), method=method, max_length=48, labels=train.labels,  # type: ignore[arg-type]
                      **extra)
    train_model(train, dev, cfg, TrainConfig(iterations=1, batch_size=8, explain_sentences=4), out, device="cpu",
                model_id=out.name)
    return out


@pytest.fixture(scope="module")
def variant_dirs(tiny_encoder_dir: Path, small_splits: tuple[Dataset, Dataset],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-folders")
    return {name: train_variant(tiny_encoder_dir, root / name, method, extra, small_splits)
            for name, (method, extra) in VARIANTS.items()}


def real_batch(folder: Path, dev: Dataset) -> dict[str, torch.Tensor]:
    """8 dev sentences of different lengths, padded into one batch by our tokenizer."""
    _, tokenizer, _ = load_trained(folder)
    encoded = encode_examples(tokenizer, dev.examples[:8], 48)
    return batch_tensors(encoded, tokenizer.pad_token_id or 0)


def assert_clean_load(info: dict[str, Any]) -> None:
    """transformers reported no missing, unexpected or mismatched weight (so nothing was newly initialised)."""
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    assert not info.get("error_msgs"), info.get("error_msgs")


def ours(folder: Path, batch: dict[str, torch.Tensor]) -> Any:
    model, _, _ = load_trained(folder)
    with torch.no_grad():
        return model(**batch)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_remote_code_load_equals_our_model(name: str, variant_dirs: dict[str, Path],
                                           small_splits: tuple[Dataset, Dataset]) -> None:
    folder = variant_dirs[name]
    assert (folder / MODELING_FILE).is_file() and is_hf_layout(folder / WEIGHTS_FILE)
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True,
                                                                     output_loading_info=True)
    assert_clean_load(info)
    assert type(model).__name__ == HF_CLASS
    batch = real_batch(folder, small_splits[1])
    expected = ours(folder, batch)
    with torch.no_grad():
        got = model.eval()(**batch)
    assert torch.allclose(got.logits, expected.logits, atol=TOLERANCE, rtol=0)
    assert torch.allclose(got.ssa_attention, expected.attention, atol=TOLERANCE, rtol=0)
    assert torch.allclose(got.importance, expected.importance, atol=TOLERANCE, rtol=0)
    method = VARIANTS[name][0]
    if method in ("layer", "hybrid"):  # the attention is real: rows sum to 1 over content tokens
        assert torch.allclose(got.ssa_attention.sum(-1), torch.ones(len(batch["input_ids"])), atol=1e-5)
    else:
        assert float(got.ssa_attention.abs().sum()) == 0.0
    assert (got.token_logits is None) == (method == "baseline")


def test_baseline_loads_without_remote_code_as_a_standard_classifier(
        variant_dirs: dict[str, Path], small_splits: tuple[Dataset, Dataset]) -> None:
    folder = variant_dirs["hf-baseline"]
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=False,
                                                                     output_loading_info=True)
    assert_clean_load(info)
    assert isinstance(model, BertForSequenceClassification)
    batch = real_batch(folder, small_splits[1])
    with torch.no_grad():
        got = model.eval()(**batch).logits
    assert torch.allclose(got, ours(folder, batch).logits, atol=TOLERANCE, rtol=0)
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_config_json_names_labels_auto_map_and_ssa_settings(variant_dirs: dict[str, Path]) -> None:
    raw = json.loads((variant_dirs["hf-layer"] / "config.json").read_text())
    assert raw["auto_map"] == {"AutoModelForSequenceClassification": "modeling_ssa.SSAForSequenceClassification"}
    assert raw["architectures"] == [HF_CLASS] and raw["model_type"] == "bert"
    assert raw["id2label"] == {"0": "negative", "1": "positive"} and raw["label2id"] == {"negative": 0, "positive": 1}
    assert raw["problem_type"] == "single_label_classification"
    assert raw["ssa"]["method"] == "layer" and raw["ssa"]["attention_scores"] == "probability"
    assert raw["ssa"]["encoder_prefix"] == "bert" and raw["ssa"]["encoder_pooler"] is True
    baseline = json.loads((variant_dirs["hf-baseline"] / "config.json").read_text())
    assert baseline["architectures"] == ["BertForSequenceClassification"]
    assert AutoConfig.from_pretrained(variant_dirs["hf-baseline"]).num_labels == 2


def test_weights_carry_the_encoders_own_names(variant_dirs: dict[str, Path]) -> None:
    from safetensors import safe_open

    with safe_open(str(variant_dirs["hf-hybrid"] / WEIGHTS_FILE), framework="pt") as handle:
        names = set(handle.keys())
    assert "bert.embeddings.word_embeddings.weight" in names and "bert.pooler.dense.weight" in names
    assert {"classifier.weight", "token_head.dense.weight"} <= names
    assert not any(n.startswith(("encoder.", "pooler.0")) for n in names) and "special_ids" not in names


def test_readme_is_a_hub_model_card_without_local_paths(variant_dirs: dict[str, Path],
                                                        tiny_encoder_dir: Path) -> None:
    folder = variant_dirs["hf-hybrid"]
    text = (folder / CARD_FILE).read_text(encoding="utf-8")
    card = ModelCard.load(folder / CARD_FILE)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-classification" and data["library_name"] == "transformers"
    assert data["license"] == "other"  # the cut encoder folder has no card of its own to take a license from
    assert data["datasets"] == ["dev.jsonl", "train.jsonl"] and data["metrics"] == ["accuracy", "f1", "mcc"]
    assert "ssa-hybrid" in data["tags"] and "base_model" not in data  # a local encoder has no Hub id
    assert str(tiny_encoder_dir) not in text and "/work/" not in text
    body = read_card(folder)
    assert body is not None and body.startswith("# Model card: hf-hybrid") and "## Explanation quality" in body


def test_the_shipped_encoder_is_named_by_its_hub_id_and_license() -> None:
    shipped = default_base_model()
    assert hub_base_model(shipped) == SHIPPED_ENCODER[1]
    assert base_model_license(shipped) == "apache-2.0"
    assert hub_base_model("bert-base-uncased") == "bert-base-uncased"
    assert hub_base_model("/somewhere/else/model") is None


def write_old_layout(folder: Path, meta_format: int) -> None:
    """Rewrite a folder the way the pipeline wrote it before the Hugging Face layout: the SSAModel's own state dict
    (with the special-token buffer, no layout metadata) and the bare encoder config; ssa.json of `meta_format`."""
    model, _, meta = load_trained(folder)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "method": model.config.method})
    model.encoder.config.__class__.from_pretrained(model.config.base_model).save_pretrained(folder)
    (folder / MODELING_FILE).unlink()
    if meta_format == 1:
        meta = {k: v for k, v in meta.items() if k != "attention_scores"}
    (folder / "ssa.json").write_text(json.dumps({**meta, "format": meta_format}))


@pytest.mark.parametrize("meta_format", [1, 2])
def test_folders_in_the_earlier_layout_still_load(meta_format: int, tiny_encoder_dir: Path, tmp_path: Path,
                                                  small_splits: tuple[Dataset, Dataset]) -> None:
    method, extra = VARIANTS["hf-layer"]  # the released pooling rule: what a format-1 folder pools by
    folder = train_variant(tiny_encoder_dir, tmp_path / "old", method, extra, small_splits)
    batch = real_batch(folder, small_splits[1])
    before = ours(folder, batch)
    write_old_layout(folder, meta_format)
    assert not is_hf_layout(folder / WEIGHTS_FILE)
    after = ours(folder, batch)
    assert torch.equal(after.logits, before.logits) and torch.equal(after.attention, before.attention)
