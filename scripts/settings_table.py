"""Print the README's settings table from the settings classes themselves (API and worker), so it cannot drift.

    python scripts/settings_table.py
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings

from service.settings import Settings
from worker.settings import WorkerSettings


def default_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(none)"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return str(value)


def rows(settings: type[BaseSettings], who: str) -> dict[str, tuple[str, str, str]]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper(): (default_text(field.default), field.description or "", who)
            for name, field in settings.model_fields.items()}


def table() -> str:
    merged = rows(Settings, "API")
    for name, (default, description, _) in rows(WorkerSettings, "worker").items():
        merged[name] = (default, merged[name][1], "API, worker") if name in merged else (default, description,
                                                                                           "worker")
    lines = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    lines += [f"| `{name}` | `{d}` | {who} | {desc} |" for name, (d, desc, who) in sorted(merged.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
