"""ONNX export: parity with PyTorch over several batch shapes, and ParityError on a graph that does not match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ssa_core.data.datasets import Dataset
from ssa_core.export.folder import load_trained
from ssa_core.export.onnx import ExportSpec, ParityError, check_parity, export_onnx
from ssa_core.model.ssa_model import SSAModel
from ssa_core.model.tokenize import Encoded, encode_examples, pad_batch

Batch = dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def loaded(trained_model_dir: Path, movie_dev: Dataset) -> tuple[SSAModel, list[Encoded], int]:
    model, tokenizer, _ = load_trained(trained_model_dir)
    return model, encode_examples(tokenizer, movie_dev.examples, 64), tokenizer.pad_token_id


def batches_of(encoded: list[Encoded], pad_id: int) -> list[Batch]:
    """1 row, 3 rows of mixed length, 8 rows, 16 rows: different batch sizes, lengths and padding."""
    groups = [encoded[:1], encoded[1:4], encoded[4:12], encoded[12:28]]
    return [pad_batch([e.input_ids for e in g], [e.token_type_ids or [] for e in g], pad_id) for g in groups]


def test_saved_onnx_matches_torch_on_several_batch_shapes(
    trained_model_dir: Path, loaded: tuple[SSAModel, list[Encoded], int]
) -> None:
    model, encoded, pad_id = loaded
    session = ort.InferenceSession(str(trained_model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    assert inputs == ["input_ids", "attention_mask", "token_type_ids"]
    shapes = set()
    for batch in batches_of(encoded, pad_id):
        shapes.add(tuple(batch["input_ids"].shape))
        logits, importance, attention = session.run(None, {k: batch[k].numpy() for k in inputs})
        with torch.no_grad():
            out = model(**batch)
        np.testing.assert_allclose(logits, out.logits.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(attention, out.attention.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(importance, out.importance.numpy(), atol=1e-5, rtol=0)
    assert len({s[0] for s in shapes}) == 4 and len({s[1] for s in shapes}) >= 3
    worst = check_parity(model, trained_model_dir / "model.onnx", batches_of(encoded, pad_id), ExportSpec())
    assert worst["logits"] <= 1e-4 and worst["attention"] <= 1e-5 and worst["importance"] <= 1e-5


def test_parity_error_when_the_graph_is_wrong(
    trained_model_dir: Path, loaded: tuple[SSAModel, list[Encoded], int]
) -> None:
    """The exported graph belongs to the trained weights; a perturbed model must not pass the check against it."""
    _, encoded, pad_id = loaded
    perturbed, _, _ = load_trained(trained_model_dir)
    with torch.no_grad():
        embeddings = perturbed.encoder.get_input_embeddings()
        assert isinstance(embeddings, torch.nn.Embedding)
        noise = torch.randn(embeddings.weight.shape, generator=torch.Generator().manual_seed(0))
        embeddings.weight.add_(0.05 * noise)
    with pytest.raises(ParityError) as caught:
        check_parity(perturbed, trained_model_dir / "model.onnx", batches_of(encoded, pad_id), ExportSpec())
    message = str(caught.value)
    assert "logits differs" in message and "attention differs" in message and "batch 3 (16," in message


def test_export_without_token_types_has_two_inputs(loaded: tuple[SSAModel, list[Encoded], int], tmp_path: Path) -> None:
    model, encoded, pad_id = loaded
    spec = export_onnx(model, tmp_path / "m.onnx", with_token_types=False)
    assert spec.inputs == ("input_ids", "attention_mask")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits", "importance", "attention"]
    plain = [{k: v for k, v in b.items() if k != "token_type_ids"} for b in batches_of(encoded, pad_id)]
    worst = check_parity(model, tmp_path / "m.onnx", plain, spec)
    assert max(worst.values()) <= 1e-4
    assert not list(tmp_path.glob("*.tmp"))
