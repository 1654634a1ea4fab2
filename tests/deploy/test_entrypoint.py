"""docker/entrypoint.sh: store check, CUDA library path on the GPU variant, exec of the command."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from tests.deploy.composefile import REPO

ENTRYPOINT = REPO / "docker/entrypoint.sh"


def run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRYPOINT), *command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, check=False)


def test_runs_the_command_with_its_exit_status(tmp_path: Path) -> None:
    result = run("sh", "-c", 'printf %s "$SSA_HOME"; exit 7', SSA_HOME=str(tmp_path / "store"))
    assert (result.returncode, result.stdout) == (7, str(tmp_path / "store"))
    assert (tmp_path / "store").is_dir() and not list((tmp_path / "store").iterdir()), "probe file left behind"


def test_unwritable_store_stops_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run("true", SSA_HOME=str(blocker / "store"))
    assert result.returncode == 78
    assert f"SSA_HOME={blocker / 'store'} is not writable" in result.stderr
    assert "chown -R" in result.stderr


def test_gpu_variant_puts_pip_cuda_libraries_on_the_library_path(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    libs = [env_dir / "lib" / version / "site-packages" / "nvidia" / name / "lib" for name in ("cudnn", "cu13")]
    for lib in libs:
        lib.mkdir(parents=True)
    path = f"{env_dir / 'bin'}:{os.environ['PATH']}"
    shown = 'printf %s "$LD_LIBRARY_PATH"'
    gpu = run("sh", "-c", shown, SSA_HOME=str(tmp_path), SSA_VARIANT="gpu", PATH=path, LD_LIBRARY_PATH="/x")
    cpu = run("sh", "-c", shown, SSA_HOME=str(tmp_path), SSA_VARIANT="cpu", PATH=path, LD_LIBRARY_PATH="/x")
    assert gpu.stdout.split(":") == [*sorted(str(lib) for lib in libs), "/x"]
    assert cpu.stdout == "/x"
