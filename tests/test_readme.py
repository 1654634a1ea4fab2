"""The README stays true: its settings table is the settings classes' own, and CI runs its test command."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def settings_table() -> str:
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.table())


def test_readme_settings_table_matches_the_settings_classes() -> None:
    assert settings_table() in README, "regenerate it: python scripts/settings_table.py"


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"^(bash scripts/\S+\.sh)", README, flags=re.MULTILINE)
    assert commands[:2] == ["bash scripts/up.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^bash scripts/test\.sh\b", ci, flags=re.MULTILINE)


def test_every_documented_setting_exists() -> None:
    documented = set(re.findall(r"`(SSA_[A-Z0-9_]+)`", README))
    known = set(re.findall(r"`(SSA_[A-Z0-9_]+)`", settings_table()))
    script_only = {"SSA_SKIP_INSTALL", "SSA_VAR_DIR", "SSA_REDIS_PASSWORD", "SSA_DATA_DIR", "SSA_REDIS_BIND",
                   "SSA_REDIS_PORT"}
    assert documented - known - script_only == set()
