"""Named training recipes: one setting selects a whole set of ModelConfig / TrainConfig values.

- "released": the released SSA code's recipe (0/1 `keep` labels, λ 0.3, the SSA layer softmaxes p_i over the kept
  set, raw pooled vector, uniform draw of probed copies).
- "graded": today's product default (the dataclass defaults: graded labels, logit attention, pooler transform).
- "robust": "graded" plus distractor copies (ssa_core.train.distraction) of every row from iteration 1 on, with
  spans from the off-topic pool and from rows of another class, the consistency term and the attention penalty,
  and the sentence vector pooled by the SSA attention alone (cls_weight 0), because with the [CLS] half in it the
  inserted clause still reached the logits (docs/ROBUSTNESS.md).

Explicit settings win over the recipe's. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ssa_core.config import MODEL_DEFAULTS, TRAIN_DEFAULTS
from ssa_core.errors import ConfigError
from ssa_core.vocabulary import RECIPE_NAMES, RecipeName

# The product default stays "graded" until "robust" meets the required line of bench/results/robustness.md.
DEFAULT_RECIPE: RecipeName = "graded"


@dataclass(frozen=True)
class Recipe:
    name: RecipeName
    summary: str
    model: Mapping[str, Any] = field(default_factory=dict)  # ModelConfig fields
    train: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields

    def value(self, name: str) -> Any:
        """The recipe's value of a ModelConfig or TrainConfig field (the dataclass default where it sets none)."""
        for own, defaults in ((self.model, MODEL_DEFAULTS), (self.train, TRAIN_DEFAULTS)):
            if name in own:
                return own[name]
            if name in defaults:
                return defaults[name]
        raise KeyError(name)


RECIPES: dict[str, Recipe] = {
    "released": Recipe("released", "the released SSA code: 0/1 keep labels, λ 0.3, p_i softmaxed over the kept set",
                       model={"lambda_tok": 0.3, "attention_scores": "probability", "pool_transform": "none"},
                       train={"label_mode": "keep", "share_balance": "none"}),
    "graded": Recipe("graded", "graded probe targets, logit attention, pooler transform (the product default)"),
    "robust": Recipe("robust", "graded + distractor copies with consistency and attention penalty, attention-only "
                     "pooling", model={"cls_weight": 0.0},
                     train={"distractor_share": 1.0, "distractor_sources": "both", "consistency_weight": 1.0,
                            "distractor_penalty": 1.0}),
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"must be one of {', '.join(RECIPE_NAMES)}", field="recipe")
    return RECIPES[name]


def resolve(name: str, model: Mapping[str, Any], train: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe's ModelConfig / TrainConfig values overridden by the explicitly given ones (None = not given).

    The baseline method (plain fine-tuning) makes no distractor copies under any recipe unless distractor_share is
    given: the augmentation-only control sets it explicitly."""
    chosen = recipe(name)
    model_values = {**chosen.model, **{k: v for k, v in model.items() if v is not None}}
    train_values = {**chosen.train, **{k: v for k, v in train.items() if v is not None}}
    if model_values.get("method") == "baseline" and train.get("distractor_share") is None:
        train_values.pop("distractor_share", None)
    return model_values, train_values
