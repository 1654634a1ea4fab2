"""Load compose files the way `docker compose` does before it validates them.

compose-spec parses and validates a compose file but does not interpolate `${VAR}`, so this module
does the steps around it: YAML parse (merge keys included), interpolation from a given environment,
merging of override files, then validation with compose-spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from compose_spec import PyCompose

REPO = Path(__file__).resolve().parents[2]

# $$ | $NAME | ${NAME} | ${NAME:-default} | ${NAME-default} | ${NAME:?error} | ${NAME?error} | ${NAME:+alt}
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<invalid>))"
)


class InterpolationError(ValueError):
    """A `${VAR:?message}` whose variable is unset, or a malformed `$` expression."""


def _substitute(match: re.Match[str], env: Mapping[str, str], where: str) -> str:
    if match["escaped"]:
        return "$"
    if match["invalid"] is not None:
        raise InterpolationError(f"{where}: invalid '$' expression (write $$ for a literal '$')")
    name = match["bare"] or match["name"]
    value, op, arg = env.get(name), match["op"] or "", match["arg"] or ""
    missing = value is None or (op.startswith(":") and value == "")
    if op.endswith("-"):
        return arg if missing else str(value)
    if op.endswith("?"):
        if missing:
            raise InterpolationError(f"{where}: required variable {name} is missing a value: {arg}")
        return str(value)
    if op.endswith("+"):
        return "" if missing else arg
    return "" if value is None else value


def interpolate(node: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Replace variables in every string value (not in keys), as compose does."""
    if isinstance(node, dict):
        return {key: interpolate(value, env, f"{where}.{key}".lstrip(".")) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env, f"{where}[{i}]") for i, value in enumerate(node)]
    if isinstance(node, str):
        return _TOKEN.sub(lambda m: _substitute(m, env, where), node)
    return node


def merge(base: Any, override: Any) -> Any:
    """Override-file merge: mappings merge key by key; any other value replaces the base value."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def load_raw(*names: str) -> dict[str, Any]:
    """Parse and merge the named files of the repository root, without interpolation."""
    merged: dict[str, Any] = {}
    for name in names:
        merged = merge(merged, yaml.safe_load((REPO / name).read_text(encoding="utf-8")))
    return merged


def validate(document: Mapping[str, Any]) -> PyCompose:
    """Validate with compose-spec (unknown keys and values are rejected); returns the parsed project."""
    project = PyCompose.from_json(json.dumps(document))
    project.validate()
    project.validate_volumes()
    project.validate_networks()
    return project


def load(*names: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Parse, merge, interpolate and validate: what `docker compose -f a -f b config` checks."""
    document = interpolate(load_raw(*names), env)
    validate(document)
    return document
