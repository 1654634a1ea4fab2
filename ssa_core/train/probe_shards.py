"""The files of a fanned-out probing step (worker.probe_fanout runs them as Celery shards): the model being probed,
written once per iteration (safetensors, never pickle), the sequences to run (one JSON line each, so that a shard
reads only up to the end of its range) and one shard's outputs (a .npy of float32 rows).

A probe shard runs `run_sequences` on rows [start, end) of the sequences file with the model loaded from the folder;
the rows of all shards, concatenated in shard order, are what the training process would have computed itself."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from ssa_core.config import ModelConfig
from ssa_core.model.ssa_model import SSAModel, load_model, save_weights
from ssa_core.train.probing import Sequences, Take, run_sequences

PROBE_FILE = "probe.json"  # next to the weights: the model's SSA config, special ids, pad id and token budget
_lock = threading.Lock()
_cache: dict[tuple[int, str], tuple[int, ProbeModel]] = {}
_loads: dict[int, int] = {}


@dataclass(frozen=True)
class ProbeModel:
    """A loaded probe model and how to batch for it."""

    model: SSAModel
    pad_id: int
    max_tokens: int


def save_probe_model(model: SSAModel, folder: Path, pad_id: int, max_tokens: int) -> None:
    """Write `model`'s current weights to `folder` (complete before probe.json appears: readers wait for it)."""
    (folder / PROBE_FILE).unlink(missing_ok=True)
    save_weights(model, folder)
    meta = {"config": model.config.to_dict(), "special_ids": [int(i) for i in model.special_ids.tolist()],
            "pad_id": pad_id, "max_tokens": max_tokens}
    temporary = folder / f".{PROBE_FILE}.tmp"
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, folder / PROBE_FILE)


def load_probe_model(folder: Path) -> ProbeModel:
    """The probe model of `folder` from this process's cache: loaded once per process and folder version (the mtime
    of probe.json), not once per shard."""
    meta_path = folder / PROBE_FILE
    stamp = meta_path.stat().st_mtime_ns
    key = (os.getpid(), str(folder))
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        meta = json.loads(meta_path.read_text())
        model = load_model(folder, ModelConfig.from_dict(meta["config"]), list(meta["special_ids"])).eval()
        loaded = ProbeModel(model, int(meta["pad_id"]), int(meta["max_tokens"]))
        _cache[key] = (stamp, loaded)
        _loads[os.getpid()] = _loads.get(os.getpid(), 0) + 1
        return loaded


def probe_model_loads() -> int:
    """How often this process loaded a probe model (once per folder version, not once per shard)."""
    return _loads.get(os.getpid(), 0)


def write_sequences(path: Path, sequences: Sequences) -> None:
    """One JSON line per sequence: {"ids": [...], "types": [...] or null}."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for i, ids in enumerate(sequences.ids):
            types = sequences.types[i] if sequences.types is not None else None
            handle.write(json.dumps({"ids": ids, "types": types}, separators=(",", ":")) + "\n")
    os.replace(temporary, path)


def read_sequences(path: Path, start: int, end: int) -> Sequences:
    """Sequences [start, end) of the file, read line by line up to `end` only."""
    sequences = Sequences()
    with path.open(encoding="utf-8") as handle:
        for line in islice(_lines(handle), start, end):
            row = json.loads(line)
            sequences.add(list(row["ids"]), row["types"])
    return sequences


def _lines(handle: Iterator[str]) -> Iterator[str]:
    yield from handle


def run_shard(folder: Path, sequences_file: Path, start: int, end: int, take: Take, out: Path) -> int:
    """Run rows [start, end) through the probe model in `folder`; write their outputs to `out` (atomically).
    Returns the rows run."""
    probe = load_probe_model(folder)
    sequences = read_sequences(sequences_file, start, end)
    rows = run_sequences(probe.model, sequences, probe.pad_id, probe.max_tokens, torch.device("cpu"), take)
    temporary = out.with_name(f".{out.name}.tmp.npy")
    np.save(temporary, np.asarray(rows, dtype=np.float32))
    os.replace(temporary, out)
    return len(sequences.ids)


def read_outputs(files: list[Path]) -> np.ndarray:
    """The shards' rows concatenated in the given (shard) order."""
    parts = [np.load(path) for path in files]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)
