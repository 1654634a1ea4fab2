"""The SSA layer's building blocks, and the model as a Hugging Face `PreTrainedModel` for trained folders.

This module is self-contained (torch and transformers only): the training pipeline copies it verbatim into every
model folder as `modeling_ssa.py`, and the folder's `config.json` names `SSAForSequenceClassification` in its
`auto_map`, so that

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

returns the trained model. `ssa_core.model.ssa_model.SSAModel` (training, probing, ONNX export) uses the same
`TokenHead`, `ssa_attention` and `logit_attention`, so both compute the same logits and attention.

Weights (model.safetensors) use the encoder's own names (`bert.embeddings...`, `bert.pooler.dense...`) plus
`classifier.*` and `token_head.*`: a baseline BERT folder is also a plain `BertForSequenceClassification`.
The SSA settings live in config.json under `ssa` (see `SSA_CONFIG_KEYS`).
Shapes: B = batch, T = sequence length, H = hidden size, C = outputs (classes, or 1 for regression).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

# config.json["ssa"]: the SSA method, its hyper-parameters, the structural special token ids, and where the weights are.
SSA_CONFIG_KEYS = ("method", "tau", "cls_weight", "attention_temperature", "attention_scores", "pool_transform",
                   "dropout", "special_ids", "encoder_prefix", "encoder_pooler")


class TokenHead(nn.Module):
    """s_i = W2 · LayerNorm(GELU(W1 h_i + b1)) + b2, shared across positions."""

    def __init__(self, hidden: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.out = nn.Linear(hidden, 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.norm(F.gelu(self.dense(hidden_states)))  # [B, T, H]
        return self.out(x)  # [B, T, 2]


def ssa_attention(
    importance: torch.Tensor, content_mask: torch.Tensor, tau: float, temperature: float = 1.0
) -> torch.Tensor:
    """SSA weights a_i: softmax of p_i / temperature over the kept set K = {content tokens with p_i >= tau}.

    Falls back to uniform weights over the content tokens (never padding or special tokens) when K is empty.
    importance, content_mask: [B, T] -> attention [B, T], rows summing to 1.
    """
    content = content_mask.to(importance.dtype)  # [B, T]
    kept = content * (importance >= tau).to(importance.dtype)  # [B, T]
    top = (importance * kept).amax(dim=-1, keepdim=True)  # [B, 1] max p_i over K (0 when K is empty)
    weights = torch.exp((importance - top).clamp_max(0.0) / temperature) * kept  # [B, T], max weight 1 in K
    kept_sum = weights.sum(dim=-1, keepdim=True)  # [B, 1]
    uniform = content / content.sum(dim=-1, keepdim=True).clamp_min(1.0)  # [B, T]
    has_kept = (kept.sum(dim=-1, keepdim=True) > 0).to(importance.dtype)  # [B, 1]
    return has_kept * weights / kept_sum.clamp_min(1e-12) + (1.0 - has_kept) * uniform


def logit_attention(scores: torch.Tensor, content_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SSA weights a_i = softmax of s_i / temperature over the content tokens (0 on padding and special tokens).

    Unlike `ssa_attention`, the scores are unbounded, so a token's weight can go to ~0 and one word can carry most
    of the sentence. A row without content tokens gets all-zero weights.
    scores, content_mask: [B, T] -> attention [B, T], rows summing to 1 (or 0).
    """
    content = content_mask.to(scores.dtype)  # [B, T]
    shifted = scores / temperature + (content - 1.0) * 1e4  # [B, T], non-content pushed to exp(...) = 0
    return shifted.softmax(dim=-1) * content  # [B, T]


@dataclass
class SSAClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus the SSA signals: `ssa_attention` a_i (the weights that pooled the sentence;
    zeros unless the method pools by attention), `importance` p_i (zeros for baseline) and `token_logits`."""

    ssa_attention: torch.Tensor | None = None  # [B, T]
    importance: torch.Tensor | None = None     # [B, T]
    token_logits: torch.Tensor | None = None   # [B, T, 2]; None for baseline


class SSAForSequenceClassification(PreTrainedModel):
    """Encoder + [CLS] pooler + (token head + SSA layer) + classifier, configured by config.json's `ssa` block."""

    base_model_prefix = ""
    supports_gradient_checkpointing = False

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        ssa: dict[str, Any] = dict(config.ssa)
        self.ssa_settings = ssa
        self.prefix = str(ssa["encoder_prefix"])
        encoder = AutoModel.from_config(config)
        hidden = int(config.hidden_size)
        if not ssa["encoder_pooler"]:
            self.pooler_dense = nn.Linear(hidden, hidden)
            if getattr(encoder, "pooler", None) is not None:
                encoder.pooler = None
        self.add_module(self.prefix, encoder)
        self.dropout = nn.Dropout(float(ssa.get("dropout", 0.1)))
        self.classifier = nn.Linear(hidden, int(config.num_labels or 1))
        eps = float(getattr(config, "layer_norm_eps", 1e-12))
        self.token_head = TokenHead(hidden, eps) if ssa["method"] != "baseline" else None
        self.special_ids = [int(i) for i in sorted(ssa["special_ids"])]  # a list, not a buffer: no weight to load
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Only reached for weights a folder lacks (none, for a folder the pipeline wrote)."""
        std = float(getattr(self.config, "initializer_range", 0.02))
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def encoder_model(self) -> nn.Module:
        return getattr(self, self.prefix)

    def dense_pooler(self) -> nn.Linear:
        """The [CLS] pooler's dense layer: the encoder's own (BERT-style) or this model's."""
        if self.ssa_settings["encoder_pooler"]:
            pooler: Any = self.encoder_model.pooler
            dense: nn.Linear = pooler.dense
            return dense
        return self.pooler_dense

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense_pooler()(x))

    def content_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] bool: real wordpieces, i.e. not padding and not a special token ([CLS], [SEP], ...)."""
        special_ids = torch.tensor(self.special_ids, dtype=input_ids.dtype, device=input_ids.device)
        special = torch.eq(input_ids.unsqueeze(-1), special_ids).any(dim=-1)  # [B, T]
        return attention_mask.bool() & ~special

    def forward(
        self,
        input_ids: torch.Tensor,                     # [B, T]
        attention_mask: torch.Tensor | None = None,  # [B, T]
        token_type_ids: torch.Tensor | None = None,  # [B, T]
        labels: torch.Tensor | None = None,          # [B]
        **kwargs: Any,
    ) -> SSAClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        encoded = self.encoder_model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        hidden = encoded.last_hidden_state  # [B, T, H]
        cls_vector = self.pool(hidden[:, 0])  # [B, H]
        zeros = torch.zeros_like(input_ids, dtype=hidden.dtype)  # [B, T]
        ssa = self.ssa_settings
        token_logits = None
        importance, attention, sentence = zeros, zeros, cls_vector
        if self.token_head is not None:
            token_logits = self.token_head(hidden)  # [B, T, 2]
            importance = token_logits.softmax(dim=-1)[..., 1]  # [B, T]
            if ssa["method"] in ("layer", "hybrid"):
                content = self.content_mask(input_ids, attention_mask)  # [B, T]
                temperature = float(ssa["attention_temperature"])
                if ssa["attention_scores"] == "logit":
                    scores = token_logits[..., 1] - token_logits[..., 0]  # [B, T]
                    attention = logit_attention(scores, content, temperature)
                else:
                    attention = ssa_attention(importance, content, float(ssa["tau"]), temperature)
                pooled = torch.einsum("bt,bth->bh", attention, hidden)  # [B, H]
                if ssa["pool_transform"] == "pooler":
                    pooled = self.pool(pooled)
                w = float(ssa["cls_weight"])
                sentence = w * cls_vector + (1.0 - w) * pooled  # [B, H]
        logits = self.classifier(self.dropout(sentence))  # [B, C]
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = F.cross_entropy(logits, labels.long())
        return SSAClassifierOutput(loss=loss, logits=logits, ssa_attention=attention, importance=importance,
                                   token_logits=token_logits)
