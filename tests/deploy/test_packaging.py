"""What each install brings (pyproject.toml, resolved by pip itself) and that a prediction-only install works: no
Celery, no pyarrow, no torch. pip's resolver runs against the package index (`--dry-run`: nothing is installed)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.composefile import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
HEAVY = {"celery", "pyarrow", "torch", "transformers", "onnx"}


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_base_install_is_light_and_the_extras_hold_the_rest() -> None:
    base, extras = names(PROJECT["dependencies"]), PROJECT["optional-dependencies"]
    assert not base & (HEAVY | {"onnxruntime", "onnxruntime-gpu", "tqdm"})
    assert names(extras["cpu"]) == {"onnxruntime"} and names(extras["gpu"]) == {"onnxruntime-gpu"}
    assert names(extras["jobs"]) == {"celery", "pyarrow"} and names(extras["parquet"]) == {"pyarrow"}
    assert "torch" in names(extras["train"])
    # `license = "MIT"` is an SPDX expression (PEP 639): setuptools reads it so from version 77 on
    assert isinstance(PROJECT["license"], str) and PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]


def resolved(target: str, tmp_path: Path) -> set[str]:
    """The distributions pip would install into an empty environment for `target` (e.g. '.[gpu]')."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                    "--disable-pip-version-check", "--report", str(report), target],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    return {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}


def test_pip_install_gpu_alone_gives_the_gpu_runtime_only(tmp_path: Path) -> None:
    installed = resolved(".[gpu]", tmp_path)
    assert "onnxruntime-gpu" in installed and "onnxruntime" not in installed
    assert not installed & HEAVY


def test_a_prediction_install_pulls_no_training_or_job_packages(tmp_path: Path) -> None:
    installed = resolved(".[cpu]", tmp_path)
    assert "onnxruntime" in installed and "onnxruntime-gpu" not in installed
    assert not installed & HEAVY, installed & HEAVY


BLOCKED = textwrap.dedent('''
    import importlib.abc, sys

    class Absent(importlib.abc.MetaPathFinder):
        """Packages of the extras a prediction-only install lacks."""
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"celery", "kombu", "pyarrow", "torch", "transformers"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
''')


def test_the_api_serves_without_the_jobs_and_train_extras(tiny_model_dir: Path, tmp_path: Path) -> None:
    script = BLOCKED + textwrap.dedent(f'''
        import json, sys
        from pathlib import Path
        from fastapi.testclient import TestClient
        from jobs.producer import jobs_installed
        from service.app import create_app
        from service.settings import Settings
        from ssa_core.runtime.artifacts import ArtifactStore
        from ssa_core.data.formats import read_table
        import shutil

        assert not jobs_installed()
        home = Path({str(tmp_path / "home")!r})
        store = ArtifactStore(home)
        with store.staging() as stage:
            shutil.copytree({str(tiny_model_dir)!r}, stage, dirs_exist_ok=True)
            store.publish_model(stage, "tiny")
        store.set_active_model("tiny")
        with TestClient(create_app(Settings(home=home, api_key="k", redis_url="redis://127.0.0.1:1/0"))) as client:
            for _ in range(200):
                if client.get("/readyz").json()["ready"]:
                    break
                import time; time.sleep(0.05)
            predicted = client.post("/predict", json={{"inputs": "A witty movie."}})
            rows = "".join(json.dumps({{"text": f"row {{i}}", "label": "pos" if i % 2 else "neg"}}) + "\\n"
                           for i in range(40))
            files = {{"train": ("train.jsonl", rows.encode(), "application/jsonl")}}
            train = client.post("/jobs/ssa-train", files=files, headers={{"X-API-Key": "k"}})
            label = client.post("/jobs/ssa-label", files={{"data": files["train"]}}, headers={{"X-API-Key": "k"}})
        parquet = read_table(b"PAR1", "parquet")
        print(json.dumps({{"predict": predicted.status_code, "parquet": parquet.problems[0].message,
                          "train": [train.status_code, train.json()["error"]],
                          "label": [label.status_code, label.json()["error"]["type"]],
                          "modules": sorted(m for m in ("celery", "torch", "pyarrow") if m in sys.modules)}}))
    ''')
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["predict"] == 200 and out["modules"] == []
    assert out["train"] == [503, {"type": "jobs_unavailable", "detail": None, "message": "this installation cannot "
                                  "run jobs: Celery is not installed (pip install 'ssa-service[jobs]')"}]
    assert out["label"] == [503, "jobs_unavailable"]
    assert out["parquet"].startswith("Parquet files need pyarrow, which this installation lacks")


def test_the_bootstrap_says_which_extra_is_missing(tmp_path: Path) -> None:
    script = BLOCKED + textwrap.dedent(f'''
        from pathlib import Path
        from jobs.store import JobStore
        from service.submissions.bootstrap import Bootstrap
        from service.settings import Settings
        from ssa_core.runtime.artifacts import ArtifactStore

        settings = Settings(home=Path({str(tmp_path / "home")!r}))
        boot = Bootstrap(settings, ArtifactStore(settings.home), JobStore.from_url("redis://127.0.0.1:1/0"), None)
        assert boot.ensure() is None
        print(boot.status())
    ''')
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Celery is not installed (pip install 'ssa-service[jobs]')" in done.stdout and "'error'" in done.stdout


@pytest.mark.parametrize("module", ["ssa_core.runtime.predictor"])
def test_without_onnx_runtime_the_import_error_names_the_extras(module: str) -> None:
    script = textwrap.dedent(f'''
        import importlib.abc, sys
        class Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "onnxruntime":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Absent())
        import {module}
    ''')
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "ssa-service needs ONNX Runtime: pip install 'ssa-service[cpu]' (or 'ssa-service[gpu]'" in done.stderr
