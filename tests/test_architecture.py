"""docs/ARCHITECTURE.md names only what exists: every file path it names or links to, and every dotted module of the
four packages (with the class, function or constant it names in that module, where it names one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGES = ("service", "ssa_core", "jobs", "worker")
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")/[\w./-]*\w)")
DOTTED = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)")
LINK = re.compile(r"\]\((\.\./[^)#]+)\)")


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_every_path_it_names_exists() -> None:
    named = set(PATH.findall(text())) | {str((DOC.parent / link).resolve().relative_to(ROOT))
                                          for link in LINK.findall(text())}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert named and not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


@pytest.mark.parametrize("dotted", sorted(set(DOTTED.findall(text()))))
def test_every_module_it_names_exists(dotted: str) -> None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest prefix that is a module; the rest names something in it
        found = module_file(parts[:cut])
        if found is not None:
            break
    assert found is not None, f"no module {dotted}"
    rest = parts[cut:]
    assert len(rest) <= 1, f"{dotted}: {'.'.join(rest)} is not a module of {'.'.join(parts[:cut])}"
    if rest:
        name = re.escape(rest[0])
        assert re.search(rf"^(?:class |def |async def )?{name}\b", found.read_text(encoding="utf-8"), re.M), \
            f"{found.relative_to(ROOT)} defines no {rest[0]}"
