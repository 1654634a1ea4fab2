"""Models for label shards, loaded once per worker process (not once per shard) from the shared artifact store, and
loaded again only when the model's folder changed (the cache key is the model id and the folder's mtime)."""

from __future__ import annotations

import logging
import os
import threading

from ssa_core.errors import NotFound
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.predictor import Predictor

log = logging.getLogger("ssa.worker")
_lock = threading.Lock()
_cache: dict[tuple[int, str], tuple[int, Predictor]] = {}


def predictor_for(store: ArtifactStore, model_id: str, threads: int | None = None) -> Predictor:
    """The model `model_id` of `store`, from this process's cache. Raises NotFound."""
    folder = store.model_dir(model_id)
    if not folder.is_dir():
        raise NotFound(f"model {model_id!r} not found")
    stamp = folder.stat().st_mtime_ns
    key = (os.getpid(), model_id)  # a forked pool child starts with its parent's entries: never share a session
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        predictor = Predictor.load(folder, provider="auto", intra_op_threads=threads, allow_spinning=False)
        _cache[key] = (stamp, predictor)
        log.info("model cache: loaded model %s in process %d", model_id, os.getpid())
        return predictor


def cached_models() -> list[str]:
    return sorted(model_id for pid, model_id in _cache if pid == os.getpid())
