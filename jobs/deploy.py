"""The deploy policy of a finished job: whether its new model becomes the store's active one, and why."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.spec import ALWAYS, NEVER, Deploy
from ssa_core.artifacts import ArtifactStore
from ssa_core.modelmeta import ModelMeta


@dataclass(frozen=True)
class DeployDecision:
    deploy: bool
    note: str


def uniform_attention(store: ArtifactStore, model_id: str, max_entropy: float) -> str | None:
    """Why `model_id` explains nothing, or None: its served attention (measured on its dev set at the end of
    training, metrics.json "explanations") has a normalised entropy above `max_entropy`. Models whose prediction is
    not pooled by the SSA attention (baseline, co) and models without the measurement are not judged."""
    info = store.get_model(model_id)
    scores = (info.metrics or {}).get("explanations")
    if info.meta.method not in ("layer", "hybrid") or not isinstance(scores, dict):
        return None
    entropy = float(scores.get("entropy", 0.0))
    if entropy <= max_entropy:
        return None
    return (f"not deployed: its attention is close to uniform (normalised entropy {entropy:.3f} > {max_entropy:.3f}, "
            "SSA_DEPLOY_MAX_ATTENTION_ENTROPY), so its explanations would single out nothing")


def decide_deploy(store: ArtifactStore, policy: Deploy, model_id: str, max_entropy: float = 1.0) -> DeployDecision:
    """Whether the new model becomes the active one, and why. Under if_better, when a model is active, a new model
    whose attention is close to uniform (normalised entropy above `max_entropy`) is refused before any score is
    compared; with no active model any model is deployed."""
    if policy == NEVER:
        return DeployDecision(False, f"not deployed (deploy: {NEVER})")
    if policy == ALWAYS:
        return DeployDecision(True, f"deployed (deploy: {ALWAYS})")
    active = store.active_model_id()
    if active is None or not store.has_model(active):  # serving a model beats serving none
        return DeployDecision(True, "deployed: there was no active model")
    uniform = uniform_attention(store, model_id, max_entropy)
    if uniform is not None:
        return DeployDecision(False, uniform)
    return _compare(store.get_model(model_id).meta, store.get_model(active).meta, active)


def _compare(new: ModelMeta, old: ModelMeta, active: str) -> DeployDecision:
    metric = new.metric
    if old.metric != metric or old.task != new.task or old.dev_metric is None or new.dev_metric is None:
        return DeployDecision(False, f"not deployed: active model {active!r} has no comparable dev {metric}")
    new_score, old_score = new.dev_metric, old.dev_metric
    relation = ">" if new_score > old_score else "<="
    verdict = "deployed" if new_score > old_score else "not deployed"
    note = f"{verdict}: dev {metric} {new_score:.4f} {relation} {old_score:.4f} of active model {active!r}"
    return DeployDecision(new_score > old_score, note)
