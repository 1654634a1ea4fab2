"""Registering a trained model: storage checks, atomic publish into the artifact store, and the deploy decision."""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ssa_core.artifacts import SSA_FILE, ArtifactStore, atomic_write_text

Deploy = Literal["never", "if_better", "always"]
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
STORAGE_PHRASES = ("no space left on device", "disk quota exceeded", "read-only file system", "storagefull",
                   "file too large", "permission denied")


class StorageError(RuntimeError):
    """The artifact store cannot take the job's files (not writable, or full): retrying the job cannot help."""


def storage_problem(exc: BaseException) -> str | None:
    """A one-line reason when `exc` (or what caused it) is a full or unwritable disk, else None. Some writers
    (safetensors, torch, ONNX) wrap the OSError in their own exception type, so the message is checked too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            return f"{current.strerror or current}{where}"
        text = str(current).lower()
        for phrase in STORAGE_PHRASES:
            if phrase in text:
                return phrase.replace("storagefull", "no space left on device")
        current = current.__cause__ or current.__context__
    return None


def check_writable(store: ArtifactStore) -> None:
    """Fail fast (before hours of training) when models/ or .staging/ cannot be written."""
    for folder in (store.staging_root, store.models_root):
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StorageError(f"the artifact store is not writable: {reason}: {folder} "
                               "(check the owner, permissions and free space of SSA_HOME)") from exc


@contextmanager
def job_staging(store: ArtifactStore, job_id: str) -> Iterator[Path]:
    """The job's staging folder under .staging/ (same filesystem as models/). What a killed attempt left there is
    removed first, and whatever is not published is removed on exit: a half-written model is never visible."""
    path = store.staging_root / f"job-{job_id}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stamp_job(staged: Path, job_id: str) -> None:
    """Record which job made the model, in its ssa.json (so that a re-run can recognise its own model)."""
    meta = json.loads((staged / SSA_FILE).read_text(encoding="utf-8"))
    meta["job_id"] = job_id
    atomic_write_text(staged / SSA_FILE, json.dumps(meta, indent=2))


def publish(store: ArtifactStore, staged: Path, model_id: str, job_id: str) -> None:
    """Publish `staged` as `model_id`. An earlier attempt of the same job that published it already (and died
    before recording success) counts as done; another job's model under that id is an error."""
    stamp_job(staged, job_id)
    try:
        store.publish_model(staged, model_id)
    except FileExistsError:
        owner = store.get_model(model_id).meta.get("job_id")
        if owner != job_id:
            raise StorageError(f"model id {model_id!r} is already taken by another model") from None


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
    if info.meta.get("method") not in ("layer", "hybrid") or not isinstance(scores, dict):
        return None
    entropy = float(scores.get("entropy", 0.0))
    if entropy <= max_entropy:
        return None
    return (f"not deployed: its attention is close to uniform (normalised entropy {entropy:.3f} > {max_entropy:.3f}, "
            "SSA_DEPLOY_MAX_ATTENTION_ENTROPY), so its explanations would single out nothing")


def decide_deploy(store: ArtifactStore, policy: Deploy, model_id: str,
                  max_entropy: float = 1.0) -> DeployDecision:
    """Whether the new model becomes the active one, and why. Under if_better a model whose attention is close to
    uniform (normalised entropy above `max_entropy`) is refused before any score is compared."""
    if policy == "never":
        return DeployDecision(False, "not deployed (deploy: never)")
    if policy == "always":
        return DeployDecision(True, "deployed (deploy: always)")
    uniform = uniform_attention(store, model_id, max_entropy)
    if uniform is not None:
        return DeployDecision(False, uniform)
    active = store.active_model_id()
    if active is None or not store.has_model(active):
        return DeployDecision(True, "deployed: there was no active model")
    return _compare(store.get_model(model_id).meta, store.get_model(active).meta, active)


def _compare(new: dict[str, Any], old: dict[str, Any], active: str) -> DeployDecision:
    metric = new.get("metric")
    if old.get("metric") != metric or old.get("task") != new.get("task") or old.get("dev_metric") is None:
        return DeployDecision(False, f"not deployed: active model {active!r} has no comparable dev {metric}")
    new_score, old_score = float(new["dev_metric"]), float(old["dev_metric"])
    relation = ">" if new_score > old_score else "<="
    verdict = "deployed" if new_score > old_score else "not deployed"
    note = f"{verdict}: dev {metric} {new_score:.4f} {relation} {old_score:.4f} of active model {active!r}"
    return DeployDecision(new_score > old_score, note)
