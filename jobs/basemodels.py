"""SSA_ALLOWED_BASE_MODELS: which encoders jobs may start from, read the same way by the API and the worker."""

from __future__ import annotations

from collections.abc import Iterable

from jobs.spec import DEFAULT_BASE_MODEL


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
