"""The docker build context (what .dockerignore lets in) builds the wheel the images install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.deploy.composefile import REPO
from tests.deploy.dockerfile import dockerignore_allows


def build_context(target: Path) -> None:
    """Copies what docker would send as the build context (top-level entries; caches excluded)."""
    for entry in REPO.iterdir():
        if not dockerignore_allows(entry.name):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(entry, target / entry.name)


def test_build_context_makes_a_wheel_with_samples_console_and_commands(tmp_path: Path) -> None:
    context, out = tmp_path / "context", tmp_path / "wheels"
    context.mkdir()
    build_context(context)
    assert not (context / "tests").exists() and not (context / ".venv").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(context)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("ssa_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"ssa_core/samples/LICENSE.md", "ssa_core/samples/sentiment/train.jsonl",
            "ssa_core/samples/sentiment/dev.jsonl", "ssa_core/samples/distractors/offtopic-training.json",
            "ssa_core/samples/distractors/offtopic-report.json"} <= names
    assert any(name.startswith("service/static/") for name in names), "the web console is missing"
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "ssa = ssa_core.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
