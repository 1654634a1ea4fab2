"""SSAModel on the real (2-layer) MiniLM: output shapes per variant and task, the SSA layer, losses, save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from ssa_core.config import ModelConfig
from ssa_core.data.datasets import Example
from ssa_core.model.ssa_model import (
    SSAModel,
    SSAOutput,
    build_model,
    graded_token_loss,
    load_model,
    logit_attention,
    save_weights,
    ssa_attention,
    ssa_loss,
    token_loss,
)
from ssa_core.model.tokenize import encode_examples, load_tokenizer, pad_batch, structural_special_ids

Tok = PreTrainedTokenizerBase
Batch = dict[str, torch.Tensor]
TEXTS = ["A fine film.", "It was a long, slow and rather dreary night at the movies.", "Funny!"]
LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir: Path) -> Tok:
    return load_tokenizer(tiny_encoder_dir)


@pytest.fixture(scope="module")
def batch(tokenizer: Tok) -> Batch:
    examples = [Example(i, i + 1, text, None, "positive") for i, text in enumerate(TEXTS)]
    encoded = encode_examples(tokenizer, examples, 64)
    return pad_batch([e.input_ids for e in encoded], [e.token_type_ids or [] for e in encoded], tokenizer.pad_token_id)


def make_model(encoder: Path, tokenizer: Tok, method: str, task: str = "classification", **kw: Any) -> SSAModel:
    torch.manual_seed(0)
    labels = LABELS if task == "classification" else ()
    cfg = ModelConfig(base_model=str(encoder), method=method, task=task, labels=labels, max_length=64, **kw)  # type: ignore[arg-type]
    return build_model(cfg, structural_special_ids(tokenizer)).eval()


def content_of(model: SSAModel, batch: Batch) -> torch.Tensor:
    return model.content_mask(batch["input_ids"], batch["attention_mask"])


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("method", ["baseline", "co", "layer", "hybrid"])
def test_output_shapes_per_variant(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, method: str, task: str
) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, method, task)
    b, t = batch["input_ids"].shape
    inputs = {k: v.clone() for k, v in batch.items()}
    with torch.no_grad():
        out = model(**inputs)
    assert all(torch.equal(inputs[k], batch[k]) for k in batch)  # the attention mask is never modified in place
    assert out.logits.shape == (b, 3 if task == "classification" else 1)
    assert out.importance.shape == (b, t) and out.attention.shape == (b, t)
    if method == "baseline":
        assert out.token_logits is None and not out.importance.any()
    else:
        assert out.token_logits is not None and out.token_logits.shape == (b, t, 2)
        assert ((out.importance > 0) & (out.importance < 1)).all()
    if method in ("baseline", "co"):
        assert not out.attention.any()
    else:
        content = content_of(model, batch)
        torch.testing.assert_close(out.attention.sum(-1), torch.ones(b))
        assert not out.attention[~content].any()


@pytest.mark.parametrize("method", ["baseline", "co", "layer", "hybrid"])
def test_co_and_baseline_predict_from_cls_only(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, method: str
) -> None:
    """Changing the token head moves the prediction only where the SSA layer pools (layer, hybrid)."""
    model = make_model(tiny_encoder_dir, tokenizer, method)
    with torch.no_grad():
        before = model(**batch).logits
        if model.token_head is not None:  # token scores that differ per token (a uniform shift pools the same)
            model.token_head.out.weight.add_(torch.randn_like(model.token_head.out.weight))
        after = model(**batch).logits
    moved = not torch.allclose(before, after)
    assert moved == (method in ("layer", "hybrid"))


def test_attention_is_softmax_of_importance_over_the_kept_set(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch
) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid", tau=0.5, attention_scores="probability")
    with torch.no_grad():
        out = model(**batch)
    content = content_of(model, batch)
    for row in range(batch["input_ids"].shape[0]):
        kept = content[row] & (out.importance[row] >= 0.5)
        assert kept.any() and (content[row] & ~kept).any(), "the test needs both kept and dropped tokens"
        expected = torch.zeros_like(out.attention[row])
        expected[kept] = torch.softmax(out.importance[row][kept], dim=0)
        torch.testing.assert_close(out.attention[row], expected)


def test_empty_keep_set_falls_back_to_uniform_over_content(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch
) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, "layer", attention_scores="probability")
    assert model.token_head is not None
    with torch.no_grad():
        model.token_head.out.bias.copy_(torch.tensor([30.0, -30.0]))  # every p_i ~ 0 < tau
        out = model(**batch)
    content = content_of(model, batch).float()
    assert (out.importance < model.config.tau).all()
    torch.testing.assert_close(out.attention, content / content.sum(-1, keepdim=True))
    assert not out.attention[batch["attention_mask"] == 0].any()  # never padding
    assert not out.attention[:, 0].any()  # never [CLS]


def test_ssa_attention_direct() -> None:
    importance = torch.tensor([[0.9, 0.1, 0.5, 0.8, 0.7], [0.1, 0.2, 0.2, 0.9, 0.9]])
    content = torch.tensor([[False, True, True, True, False], [False, True, True, False, False]])
    got = ssa_attention(importance, content, tau=0.3)
    e5, e8 = torch.exp(torch.tensor(0.5)), torch.exp(torch.tensor(0.8))
    row0 = torch.tensor([0.0, 0.0, e5 / (e5 + e8), e8 / (e5 + e8), 0.0])
    row1 = torch.tensor([0.0, 0.5, 0.5, 0.0, 0.0])  # nothing kept: uniform over the two content tokens
    torch.testing.assert_close(got, torch.stack([row0, row1]))
    # A row without any content token (only specials) gets zero weights rather than NaN.
    empty = ssa_attention(torch.tensor([[0.9, 0.9]]), torch.tensor([[False, False]]), 0.3)
    assert torch.equal(empty, torch.zeros(1, 2))


def test_attention_temperature_sharpens_the_softmax() -> None:
    importance = torch.tensor([[0.2, 0.4, 0.9, 0.6]])
    content = torch.tensor([[False, True, True, True]])
    got = ssa_attention(importance, content, tau=0.3, temperature=0.25)
    expected = torch.zeros(1, 4)
    expected[0, 1:] = torch.softmax(torch.tensor([0.4, 0.9, 0.6]) / 0.25, dim=0)
    torch.testing.assert_close(got, expected)


def test_logit_attention_is_softmax_of_token_scores_over_content(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch
) -> None:
    """The default SSA layer: a_i = softmax over every content token of s_i = log(p_i / (1 − p_i)) — no keep set."""
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid")
    assert model.config.attention_scores == "logit" and model.token_head is not None
    with torch.no_grad():
        model.token_head.out.weight.mul_(20.0)  # spread the scores, so that weights differ by far more than 2x
        out = model(**batch)
    content = content_of(model, batch)
    assert out.token_logits is not None
    scores = out.token_logits[..., 1] - out.token_logits[..., 0]  # log(p_i / (1 - p_i))
    torch.testing.assert_close(torch.sigmoid(scores), out.importance)
    for row in range(batch["input_ids"].shape[0]):
        expected = torch.zeros_like(out.attention[row])
        expected[content[row]] = torch.softmax(scores[row][content[row]], dim=0)
        torch.testing.assert_close(out.attention[row], expected, atol=1e-5, rtol=1e-4)
        weights = out.attention[row][content[row]]
        assert weights.max() / weights.min() > 10.0


def test_logit_attention_direct() -> None:
    scores = torch.tensor([[5.0, 0.0, 2.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    content = torch.tensor([[False, True, True, True], [False, False, False, False]])
    got = logit_attention(scores, content, temperature=0.5)
    expected = torch.zeros(2, 4)
    expected[0, 1:] = torch.softmax(torch.tensor([0.0, 2.0, -1.0]) / 0.5, dim=0)
    torch.testing.assert_close(got, expected)  # second row: no content, all zero (never NaN)


def test_graded_token_loss_is_kl_from_normalised_targets() -> None:
    scores = torch.tensor([[0.0, 1.0, 2.0, 0.5], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    targets = torch.tensor([[-1.0, 0.3, 0.1, 0.0], [-1.0, 0.0, 0.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    loss = graded_token_loss(scores, targets)
    t = torch.tensor([0.75, 0.25, 0.0])
    log_a = torch.log_softmax(torch.tensor([1.0, 2.0, 0.5]), dim=0)
    expected = (t[:2] * (t[:2].log() - log_a[:2])).sum()  # rows 2 and 3 carry no target mass: left out
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert scores.grad is not None and not scores.grad[1:].any()
    assert graded_token_loss(scores, -torch.ones(3, 4)).item() == 0.0


def test_graded_loss_keeps_the_class_loss_at_full_weight() -> None:
    logits = torch.tensor([[2.0, 0.0]])
    token_logits = torch.zeros(1, 3, 2)
    token_logits[0, :, 1] = torch.tensor([0.0, 1.0, -1.0])
    out = fake_output(logits, token_logits)
    cfg = ModelConfig(base_model="x", method="hybrid", labels=("a", "b"), lambda_tok=0.3)
    targets = torch.tensor([[-1.0, 1.0, 0.0]])
    total, cls_loss, tok_loss = ssa_loss(out, torch.tensor([0]), targets, cfg, graded=True)
    torch.testing.assert_close(total, cls_loss + 0.3 * tok_loss)
    assert tok_loss.item() > 0


@pytest.mark.parametrize("detach", [False, True])
def test_detached_token_head_keeps_the_token_loss_out_of_the_encoder(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, detach: bool
) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid", detach_token_head=detach)
    out = model(**batch)
    content = content_of(model, batch)
    targets = torch.where(content, torch.rand(content.shape), torch.full(content.shape, -1.0))
    graded_token_loss(out.token_scores, targets).backward()
    encoder_grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert model.token_head is not None and model.token_head.out.weight.grad is not None
    assert (encoder_grad == 0.0) == detach


@pytest.mark.parametrize("transform", ["none", "pooler"])
def test_sentence_vector_mixes_cls_and_pooled_tokens(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, transform: str
) -> None:
    """z = w · pooler(h_CLS) + (1 − w) · c, with c = Σ a_i h_i (optionally through the pooler), logits = W_o z."""
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid", cls_weight=0.3, pool_transform=transform)
    with torch.no_grad():
        out = model(**batch)
        hidden = model.encoder(**batch).last_hidden_state
        pooled = torch.einsum("bt,bth->bh", out.attention, hidden)
        if transform == "pooler":
            pooled = model.pooler(pooled)
        expected = model.classifier(0.3 * model.pooler(hidden[:, 0]) + 0.7 * pooled)
    torch.testing.assert_close(out.logits, expected)


def test_mask_and_unk_tokens_count_as_content(tiny_encoder_dir: Path, tokenizer: Tok) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid")
    ids = torch.tensor(
        [
            [
                tokenizer.cls_token_id,
                2000,
                tokenizer.mask_token_id,
                tokenizer.unk_token_id,
                tokenizer.sep_token_id,
                tokenizer.pad_token_id,
            ]
        ]
    )
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    assert model.content_mask(ids, mask).tolist() == [[False, True, True, True, False, False]]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("method", ["baseline", "hybrid"])
def test_batch_size_one_trains(tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, method: str, task: str) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, method, task).train()
    one = {k: v[:1, : int(batch["attention_mask"][0].sum())] for k, v in batch.items()}
    out = model(**one)
    target = torch.tensor([2]) if task == "classification" else torch.tensor([0.25])
    labels = torch.where(one["attention_mask"].bool(), 1, -1)
    labels[:, 0] = labels[:, -1] = -1
    loss, cls_loss, _ = ssa_loss(out, target, labels, model.config)
    assert loss.ndim == 0 and torch.isfinite(loss)
    if task == "regression":
        torch.testing.assert_close(cls_loss, (out.logits[0, 0] - 0.25) ** 2)
    loss.backward()
    assert model.classifier.weight.grad is not None and model.classifier.weight.grad.abs().sum() > 0


# ---- losses ---------------------------------------------------------------------------------------------


def test_token_loss_is_cross_entropy_over_valid_positions_only() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 2)
    labels = torch.tensor([[-1, 1, 0, 1, -1], [-1, 0, -1, -1, -1]])
    picked = [(0, 1, 1), (0, 2, 0), (0, 3, 1), (1, 1, 0)]
    expected = -torch.stack([F.log_softmax(logits[b, t], -1)[c] for b, t, c in picked]).mean()
    torch.testing.assert_close(token_loss(logits, labels), expected)
    # What sits behind -1 labels does not matter.
    changed = logits.clone()
    changed[labels == -1] = 100.0
    torch.testing.assert_close(token_loss(changed, labels), expected)


def test_token_loss_with_no_valid_position_is_zero_with_a_gradient_path() -> None:
    logits = torch.randn(2, 3, 2, requires_grad=True)
    loss = token_loss(logits, torch.full((2, 3), -1))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and not logits.grad.any()
    assert token_loss(None, None).item() == 0.0


def fake_output(logits: torch.Tensor, token_logits: torch.Tensor | None) -> SSAOutput:
    zeros = torch.zeros(logits.shape[0], 4)
    return SSAOutput(logits, token_logits, zeros, zeros)


@pytest.mark.parametrize("method", ["baseline", "co", "layer", "hybrid"])
def test_ssa_loss_combines_class_and_token_loss_per_variant(method: str) -> None:
    torch.manual_seed(1)
    cfg = ModelConfig(base_model="unused", method=method, labels=("a", "b", "c"), lambda_tok=0.3)  # type: ignore[arg-type]
    logits, token_logits = torch.randn(2, 3), torch.randn(2, 4, 2)
    labels, tokens = torch.tensor([2, 0]), torch.tensor([[-1, 1, 0, -1], [-1, 1, 1, -1]])
    total, cls_loss, tok_loss = ssa_loss(fake_output(logits, token_logits), labels, tokens, cfg)
    torch.testing.assert_close(cls_loss, F.cross_entropy(logits, labels))
    torch.testing.assert_close(tok_loss, token_loss(token_logits, tokens))
    expected = cls_loss if method in ("baseline", "layer") else 0.7 * cls_loss + 0.3 * tok_loss
    torch.testing.assert_close(total, expected)


def test_regression_loss_is_mse() -> None:
    cfg = ModelConfig(base_model="unused", method="hybrid", task="regression", lambda_tok=0.25)
    logits = torch.tensor([[0.5], [2.0], [-1.0]])
    targets = torch.tensor([1.0, 2.0, 1.0])
    total, cls_loss, tok_loss = ssa_loss(
        fake_output(logits, torch.zeros(3, 4, 2)), targets, torch.full((3, 4), -1), cfg
    )
    torch.testing.assert_close(cls_loss, torch.tensor((0.25 + 0.0 + 4.0) / 3))
    torch.testing.assert_close(total, 0.75 * cls_loss)
    assert tok_loss.item() == 0.0


# ---- persistence ------------------------------------------------------------------------------------------


def test_save_and_load_give_the_same_outputs(
    tiny_encoder_dir: Path, tokenizer: Tok, batch: Batch, tmp_path: Path
) -> None:
    model = make_model(tiny_encoder_dir, tokenizer, "hybrid")
    save_weights(model, tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded = load_model(tmp_path, model.config, structural_special_ids(tokenizer)).eval()
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.attention, b.attention, rtol=0, atol=0)


def test_load_refuses_weights_of_another_variant(tiny_encoder_dir: Path, tokenizer: Tok, tmp_path: Path) -> None:
    save_weights(make_model(tiny_encoder_dir, tokenizer, "baseline"), tmp_path)
    hybrid_cfg = ModelConfig(base_model=str(tiny_encoder_dir), method="hybrid", labels=LABELS)
    with pytest.raises(ValueError, match="token_head"):
        load_model(tmp_path, hybrid_cfg, structural_special_ids(tokenizer))


def test_pretrained_pooler_is_adopted(tiny_encoder_dir: Path, tokenizer: Tok) -> None:
    from transformers import AutoModel

    model = make_model(tiny_encoder_dir, tokenizer, "baseline")
    encoder = AutoModel.from_pretrained(tiny_encoder_dir)
    assert model.encoder.pooler is None
    torch.testing.assert_close(model.pooler[0].weight, encoder.pooler.dense.weight)
