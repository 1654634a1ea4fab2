"""SSAModel: a BERT-family encoder with a token head and the SSA attention-pooling layer.

Shapes: B = batch, T = sequence length, H = hidden size, C = outputs (classes, or 1 for regression).
Methods (see SSA_METHOD.md): baseline ([CLS] only), co (+ token head trained jointly), layer (SSA layer
predicts, class loss only), hybrid (SSA layer predicts, class + token loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from ssa_core.config import ModelConfig
from ssa_core.model.hf_folder import (
    HF_LAYOUT,
    LAYOUT_KEY,
    encoder_prefix,
    from_hf_layout,
    hf_config,
    is_hf_layout,
    to_hf_layout,
    write_modeling_code,
)
from ssa_core.model.hf_modeling import TokenHead, logit_attention, ssa_attention
from ssa_core.runtime.modelmeta import WEIGHTS_FILE

IGNORE_INDEX = -1


@dataclass
class SSAOutput:
    logits: torch.Tensor             # [B, C]
    token_logits: torch.Tensor | None  # [B, T, 2]; None for baseline
    importance: torch.Tensor         # [B, T] p_i (zeros for baseline)
    attention: torch.Tensor          # [B, T] a_i (zeros unless the SSA layer pools)

    @property
    def token_scores(self) -> torch.Tensor | None:
        """[B, T] unbounded scores s_i = log(p_i / (1 − p_i)); None for baseline."""
        if self.token_logits is None:
            return None
        return self.token_logits[..., 1] - self.token_logits[..., 0]


class SSAModel(nn.Module):
    """Encoder + [CLS] pooler + (token head + SSA layer) + output layer."""

    def __init__(self, encoder: PreTrainedModel, config: ModelConfig, special_ids: list[int]) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.pooler = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self._adopt_encoder_pooler()
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(hidden, config.num_outputs)
        eps = float(getattr(encoder.config, "layer_norm_eps", 1e-12))
        self.token_head = TokenHead(hidden, eps) if config.has_token_head else None
        self.special_ids: torch.Tensor
        self.register_buffer("special_ids", torch.tensor(sorted(set(special_ids)), dtype=torch.long))
        self._init_new_layers(float(getattr(encoder.config, "initializer_range", 0.02)))

    def _adopt_encoder_pooler(self) -> None:
        """Take over the encoder's pretrained [CLS] pooler when it has one, and drop it from the encoder."""
        pooler = getattr(self.encoder, "pooler", None)
        dense = getattr(pooler, "dense", None)
        if isinstance(dense, nn.Linear) and dense.weight.shape == self.pooler[0].weight.shape:
            self.pooler[0].load_state_dict(dense.state_dict())
            self._pretrained_pooler = True
        else:
            self._pretrained_pooler = False
        if pooler is not None:
            setattr(self.encoder, "pooler", None)  # noqa: B010 - the attribute is typed as a Module

    @property
    def encoder_pooler(self) -> bool:
        """True when the [CLS] pooler is the encoder's own (pretrained) one: saved under the encoder's name."""
        return self._pretrained_pooler

    def _init_new_layers(self, std: float) -> None:
        layers: list[nn.Module] = [self.classifier]
        if not self._pretrained_pooler:
            layers.append(self.pooler[0])
        if self.token_head is not None:
            layers += [self.token_head.dense, self.token_head.out]
        for layer in layers:
            assert isinstance(layer, nn.Linear)
            nn.init.trunc_normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def content_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] bool: real wordpieces, i.e. not padding and not a special token ([CLS], [SEP], ...)."""
        special = torch.eq(input_ids.unsqueeze(-1), self.special_ids).any(dim=-1)  # [B, T]
        return attention_mask.bool() & ~special

    def forward(
        self,
        input_ids: torch.Tensor,                     # [B, T]
        attention_mask: torch.Tensor,                # [B, T]
        token_type_ids: torch.Tensor | None = None,  # [B, T]
    ) -> SSAOutput:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        # hidden: [B, T, H]
        cls_vector = self.pooler(hidden[:, 0])  # [B, H]
        zeros = torch.zeros_like(input_ids, dtype=hidden.dtype)  # [B, T]
        if self.token_head is None:
            return SSAOutput(self.classifier(self.dropout(cls_vector)), None, zeros, zeros)
        token_logits = self.token_head(hidden.detach() if self.config.detach_token_head else hidden)  # [B, T, 2]
        importance = token_logits.softmax(dim=-1)[..., 1]  # [B, T]
        if not self.config.pools_by_attention:  # co-training: the token head does not change the prediction
            return SSAOutput(self.classifier(self.dropout(cls_vector)), token_logits, importance, zeros)
        content = self.content_mask(input_ids, attention_mask)  # [B, T]
        temperature = self.config.attention_temperature
        if self.config.attention_scores == "logit":
            scores = token_logits[..., 1] - token_logits[..., 0]  # [B, T] log-odds of p_i
            attention = logit_attention(scores, content, temperature)  # [B, T]
        else:
            attention = ssa_attention(importance, content, self.config.tau, temperature)  # [B, T]
        pooled = torch.einsum("bt,bth->bh", attention, hidden)  # [B, H]
        if self.config.pool_transform == "pooler":
            pooled = self.pooler(pooled)  # [B, H], same dense + tanh as the [CLS] vector
        w = self.config.cls_weight
        sentence = w * cls_vector + (1.0 - w) * pooled  # [B, H]
        return SSAOutput(self.classifier(self.dropout(sentence)), token_logits, importance, attention)


def ssa_loss(
    output: SSAOutput,
    labels: torch.Tensor,              # [B] class ids (long) or targets (float)
    token_labels: torch.Tensor | None,  # [B, T]: {-1, 0, 1} labels, or graded targets >= 0 (-1 = none)
    config: ModelConfig,
    graded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (total, class loss, token loss) for the model's SSA method.

    graded: token_labels are soft targets, and the token loss is KL(target ‖ softmax of the token scores) per sentence
    (see `graded_token_loss`); otherwise the token head's cross-entropy against 0/1 labels."""
    if config.task == "regression":
        cls_loss = F.mse_loss(output.logits.squeeze(-1), labels.float())
    else:
        cls_loss = F.cross_entropy(output.logits, labels)
    if graded:
        tok_loss = graded_token_loss(output.token_scores, token_labels, config.attention_temperature)
    else:
        tok_loss = token_loss(output.token_logits, None if token_labels is None else token_labels.long())
    if config.method in ("baseline", "layer"):
        return cls_loss, cls_loss, tok_loss
    lam = config.lambda_tok
    if graded:  # the class loss keeps its full weight (the baseline's scale); the KL term is added on top
        return cls_loss + lam * tok_loss, cls_loss, tok_loss
    return (1.0 - lam) * cls_loss + lam * tok_loss, cls_loss, tok_loss


def token_loss(token_logits: torch.Tensor | None, token_labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of the token head over positions whose label is not -1 (0 when there are none)."""
    if token_logits is None or token_labels is None:
        device = token_logits.device if token_logits is not None else None
        return torch.zeros((), device=device)
    valid = token_labels != IGNORE_INDEX  # [B, T]
    if not bool(valid.any()):
        return token_logits.sum() * 0.0
    return F.cross_entropy(token_logits[valid], token_labels[valid])


def graded_token_loss(
    scores: torch.Tensor | None, targets: torch.Tensor | None, temperature: float = 1.0
) -> torch.Tensor:
    """Mean over sentences of KL(t ‖ a): t = the targets normalised over the sentence's positions with a target
    (>= 0), a = softmax of scores / temperature over the same positions. Sentences whose targets are all 0 or absent
    (-1) do not count; 0 when no sentence does.

    scores, targets: [B, T] -> scalar."""
    if scores is None or targets is None:
        return torch.zeros((), device=None if scores is None else scores.device)
    valid = targets >= 0  # [B, T]
    mass = targets.clamp_min(0.0) * valid  # [B, T]
    totals = mass.sum(dim=-1, keepdim=True)  # [B, 1]
    rows = totals.squeeze(-1) > 0  # [B]
    if not bool(rows.any()):
        return scores.sum() * 0.0
    t = mass[rows] / totals[rows]  # [R, T], rows sum to 1
    shifted = scores[rows] / temperature + (valid[rows].to(scores.dtype) - 1.0) * 1e4  # [R, T]
    log_a = shifted.log_softmax(dim=-1)  # [R, T]
    kl = (torch.xlogy(t, t) - t * log_a).sum(dim=-1)  # [R]
    return kl.mean()


def build_model(config: ModelConfig, special_ids: list[int]) -> SSAModel:
    """A fresh SSA model on top of the pretrained encoder named by config.base_model.

    special_ids: the structural special tokens ([CLS]/[SEP]/[PAD]) excluded from the SSA layer.
    """
    encoder = AutoModel.from_pretrained(config.base_model)
    return SSAModel(encoder, config, special_ids)


def save_weights(model: SSAModel, out_dir: Path) -> None:
    """Write model.safetensors (Hugging Face layout), config.json (encoder config + labels, SSA settings, auto_map)
    and modeling_ssa.py into out_dir: see ssa_core.model.hf_folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = encoder_prefix(model.encoder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "method": model.config.method, LAYOUT_KEY: HF_LAYOUT}
    save_file(to_hf_layout(state, prefix, model.encoder_pooler), str(out_dir / WEIGHTS_FILE), metadata=metadata)
    special_ids = [int(i) for i in model.special_ids.tolist()]
    hf_config(model.encoder.config, model.config, special_ids, prefix, model.encoder_pooler).save_pretrained(out_dir)
    write_modeling_code(out_dir)


def load_model(model_dir: Path, config: ModelConfig, special_ids: list[int]) -> SSAModel:
    """Rebuild an SSAModel from a saved folder (safetensors only, never pickle), in either weight layout."""
    encoder_config = AutoConfig.from_pretrained(model_dir)
    encoder = AutoModel.from_config(encoder_config)
    model = SSAModel(encoder, config, special_ids)
    weights = model_dir / WEIGHTS_FILE
    state = load_file(str(weights))
    if is_hf_layout(weights):
        state = from_hf_layout(state, encoder_prefix(model.encoder), model.special_ids)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights in {model_dir} do not match the model: missing {missing}, unexpected {unexpected}")
    return model
