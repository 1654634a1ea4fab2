"""SSA_ALLOWED_BASE_MODELS: which encoders jobs may start from, read the same way by the API and the worker."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Final

from jobs.spec import DEFAULT_BASE_MODEL

# Input lengths of the built-in encoders, for an API that does not have their folders (the API image has no torch
# and no encoder): all-MiniLM-L6-v2 has 512 position embeddings.
KNOWN_POSITIONS: Final = {DEFAULT_BASE_MODEL: 512}


def parse_base_models(spec: str | Iterable[str]) -> dict[str, str | None]:
    """`"minilm,tiny=/models/tiny"` (or its entries) -> {"minilm": None, "tiny": "/models/tiny"} (None: the
    built-in encoder). ValueError on an entry that is not `name` or `name=path`."""
    entries = spec.split(",") if isinstance(spec, str) else spec
    models: dict[str, str | None] = {}
    for item in (part.strip() for part in entries):
        if not item:
            continue
        name, sep, path = item.partition("=")
        if not name.strip() or (sep and not path.strip()):
            raise ValueError(f"SSA_ALLOWED_BASE_MODELS: bad entry {item!r} (expected name or name=path)")
        models[name.strip()] = path.strip() if sep else None
    return models


def resolve_base_model(name: str, spec: str | Iterable[str]) -> str:
    """The folder (or hub id) of an allowed base model; ValueError naming the allowed ones otherwise."""
    models = parse_base_models(spec)
    if name not in models:
        raise ValueError(f"base model {name!r} is not allowed on this worker (allowed: {', '.join(models)})")
    path = models[name]
    if path is not None:
        return path
    if name != DEFAULT_BASE_MODEL:
        raise ValueError(f"base model {name!r} has no folder: write it as {name}=/path/to/model")
    from ssa_core.config import default_base_model

    return default_base_model()


def encoder_positions(folder: str | Path) -> int | None:
    """The longest input (in tokens, special tokens included) the encoder in `folder` can embed: its
    `max_position_embeddings`, less the padding offset of RoBERTa-style encoders. None when the folder has no
    readable config.json that says (a hub id, a broken folder: the worker reports those)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    positions = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if not isinstance(positions, int) or isinstance(positions, bool) or positions <= 0:
        return None
    if "roberta" in str(config.get("model_type", "")) or config.get("model_type") == "camembert":
        pad = config.get("pad_token_id", 1)
        positions -= (pad if isinstance(pad, int) else 1) + 1
    return positions if positions > 0 else None


def base_model_positions(name: str, spec: str | Iterable[str]) -> int | None:
    """The longest input of an allowed base model (see encoder_positions), or None when it cannot be known here."""
    path = parse_base_models(spec).get(name)
    if path is None and name == DEFAULT_BASE_MODEL:
        try:
            path = resolve_base_model(name, spec)
        except Exception:  # the encoder's package is not installed here (the API image): use what is known
            return KNOWN_POSITIONS[name]
    found = encoder_positions(path) if path is not None else None
    return found if found is not None else KNOWN_POSITIONS.get(name)


@lru_cache(maxsize=1)
def _default_folder() -> str | None:
    try:
        return str(Path(resolve_base_model(DEFAULT_BASE_MODEL, [DEFAULT_BASE_MODEL])).resolve())
    except Exception:  # the encoder's package is not installed here (the API image)
        return None


def base_model_name(recorded: str | None, spec: str | Iterable[str]) -> str | None:
    """What API readers see of a model's base model: the allow-list name of the folder it was trained from (or
    minilm for the built-in encoder), a hub id as it is, and of any other folder its last part only, never the
    server's path."""
    if not recorded or not (recorded.startswith(("/", "./", "../", "~")) or "\\" in recorded):
        return recorded
    path = str(Path(recorded).expanduser().resolve())
    for name, folder in parse_base_models(spec).items():
        if folder is not None and str(Path(folder).expanduser().resolve()) == path:
            return name
    if path == _default_folder():
        return DEFAULT_BASE_MODEL
    return Path(path).name or None
