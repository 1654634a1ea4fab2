"""docker-compose.yml and its companion files: valid per the compose spec, and shaped as documented."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.composefile import REPO, InterpolationError, interpolate, load, load_raw, validate

ENV = {"SSA_API_KEY": "test-key", "SSA_REDIS_PASSWORD": "0123abcd"}
WORKER_ENV = {"SSA_REDIS_URL": "redis://:0123abcd@main-host:6379/0", "SSA_DATA_DIR": "/mnt/ssa"}
BASE = ("docker-compose.yml",)
GPU = ("docker-compose.yml", "docker-compose.gpu.yml")
REMOTE = ("docker-compose.yml", "docker-compose.remote.yml")
ALL = (*GPU, "docker-compose.remote.yml")
WORKER = ("docker-compose.worker.yml",)
NVIDIA = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def services(*files: str, env: dict[str, str] = ENV) -> dict[str, Any]:
    return load(*files, env=env)["services"]


def devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def redis_conf() -> dict[str, str]:
    lines = (REPO / "docker/redis.conf").read_text(encoding="utf-8").splitlines()
    pairs = (line.split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {key: value.strip() for key, value in pairs}


@pytest.mark.parametrize(
    ("files", "env"),
    [(BASE, ENV), (GPU, ENV), (REMOTE, ENV), (ALL, ENV), (WORKER, WORKER_ENV)],
    ids=["cpu", "gpu", "remote", "gpu+remote", "extra-worker"],
)
def test_compose_files_validate(files: tuple[str, ...], env: dict[str, str]) -> None:
    assert load(*files, env=env)["services"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("services", "api", "restart_policy"), "always", "restart_policy"),
        (("services", "redis", "healthcheck", "tests"), ["CMD", "true"], "tests"),
        (("services", "worker", "restart"), "sometimes", "sometimes"),
        (("services", "api", "depends_on", "redis", "condition"), "service_happy", "service_happy"),
    ],
    ids=["unknown-service-key", "unknown-healthcheck-key", "bad-restart", "bad-condition"],
)
def test_broken_copy_is_rejected(path: tuple[str, ...], value: Any, expected: str) -> None:
    broken = copy.deepcopy(interpolate(load_raw(*BASE), ENV))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=expected):
        validate(broken)


def test_api_key_is_optional_and_a_given_one_is_passed() -> None:
    """No .env: SSA_API_KEY is empty and the API generates its own (service/apikey.py); a set key wins."""
    assert services(*BASE, env={})["api"]["environment"]["SSA_API_KEY"] == ""
    assert services(*BASE)["api"]["environment"]["SSA_API_KEY"] == "test-key"


def test_base_and_redis_images_can_be_overridden() -> None:
    """Hosts without Docker Hub build from local stand-ins (scripts/base-images.sh) or other registries."""
    default, custom = services(*BASE, env={}), services(*BASE, env={"PYTHON_IMAGE": "py:local",
                                                                       "SSA_REDIS_IMAGE": "mirror/redis:7"})
    assert default["redis"]["image"] == "redis:7" and custom["redis"]["image"] == "mirror/redis:7"
    for name in ("api", "worker", "flower"):
        assert default[name]["build"]["args"]["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
        assert custom[name]["build"]["args"]["PYTHON_IMAGE"] == "py:local"


def test_redis_persists_and_never_evicts() -> None:
    redis = services(*BASE)["redis"]
    assert redis["image"] == "redis:7"
    assert "./docker/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    assert redis["command"][:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    conf = redis_conf()
    assert (conf["appendonly"], conf["appendfsync"], conf["maxmemory-policy"]) == ("yes", "everysec", "noeviction")


@pytest.mark.parametrize("name", ["redis", "api", "worker", "flower"])
def test_every_service_restarts_and_has_a_healthcheck(name: str) -> None:
    service = services(*BASE)[name]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"]


@pytest.mark.parametrize("name", ["api", "worker", "flower"])
def test_app_services_wait_for_healthy_redis(name: str) -> None:
    service = services(*BASE)[name]
    assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert service["environment"]["SSA_REDIS_URL"] == "redis://redis:6379/0"


def test_api_and_worker_share_the_artifact_volume() -> None:
    project = load(*BASE, env=ENV)
    api, worker = project["services"]["api"], project["services"]["worker"]
    assert "ssa-data" in project["volumes"]
    assert api["volumes"] == worker["volumes"] == ["ssa-data:/data"]
    assert api["environment"]["SSA_HOME"] == worker["environment"]["SSA_HOME"] == "/data"


def test_api_serves_on_8000_with_healthz_check() -> None:
    api = services(*BASE)["api"]
    assert api["ports"] == ["8000:8000"]
    assert api["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/healthz"
    assert api["environment"]["SSA_API_KEY"] == "test-key"


def test_worker_can_be_scaled() -> None:
    worker = services(*BASE)["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker, "a fixed host port would make --scale worker=N fail"


def test_flower_runs_the_documented_command_on_loopback() -> None:
    flower, api = services(*BASE)["flower"], services(*BASE)["api"]
    assert flower["command"] == ["celery", "-A", "worker.celery_app:app", "flower", "--port=5555"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert flower["healthcheck"]["test"][-1].endswith(":5555/healthcheck")
    assert (flower["image"], flower["build"]) == (api["image"], api["build"]), "one image build for both"


def test_cpu_file_reserves_no_gpu_and_gpu_override_does() -> None:
    cpu, gpu = services(*BASE), services(*GPU)
    assert all(not devices(service) for service in cpu.values())
    for name in ("api", "worker"):
        assert devices(gpu[name]) == [NVIDIA]
        assert gpu[name]["build"]["args"]["VARIANT"] == "gpu"
        assert gpu[name]["image"].endswith(":gpu")
        assert cpu[name]["build"]["args"]["VARIANT"] == "cpu"
    assert gpu["flower"]["image"] == gpu["api"]["image"] and not devices(gpu["flower"])


def test_remote_override_guards_and_publishes_redis() -> None:
    remote = services(*REMOTE)
    assert remote["redis"]["command"][-2:] == ["--requirepass", "0123abcd"]
    assert remote["redis"]["environment"]["REDISCLI_AUTH"] == "0123abcd"
    assert remote["redis"]["ports"] == ["0.0.0.0:6379:6379"]
    for name in ("api", "worker", "flower"):
        assert remote[name]["environment"]["SSA_REDIS_URL"] == "redis://:0123abcd@redis:6379/0"
    with pytest.raises(InterpolationError, match="SSA_REDIS_PASSWORD"):
        load(*REMOTE, env={"SSA_API_KEY": "k"})


def test_extra_worker_file_needs_redis_url_and_shared_store() -> None:
    workers = services(*WORKER, env=WORKER_ENV)
    assert workers["worker"]["profiles"] == ["cpu"] and workers["worker-gpu"]["profiles"] == ["gpu"]
    assert devices(workers["worker-gpu"]) == [NVIDIA] and not devices(workers["worker"])
    for worker in workers.values():
        assert worker["volumes"] == [{"type": "bind", "source": "/mnt/ssa", "target": "/data"}]
        assert worker["environment"]["SSA_REDIS_URL"] == WORKER_ENV["SSA_REDIS_URL"]
    for missing in WORKER_ENV:
        env = {key: value for key, value in WORKER_ENV.items() if key != missing}
        with pytest.raises(InterpolationError, match=missing):
            load(*WORKER, env=env)


def test_settings_passed_to_containers_are_documented() -> None:
    documented = set(re.findall(r"\bSSA_[A-Z_]+", (REPO / "docs/ARCHITECTURE.md").read_text(encoding="utf-8")))
    used = {
        key
        for files, env in ((ALL, ENV), (WORKER, WORKER_ENV))
        for service in services(*files, env=env).values()
        for key in service.get("environment", {})
        if key.startswith("SSA_")
    }
    assert used and used <= documented, f"not in docs/ARCHITECTURE.md: {sorted(used - documented)}"


def test_build_sections_point_at_existing_dockerfiles() -> None:
    for files, env in ((GPU, ENV), (WORKER, WORKER_ENV)):
        for service in services(*files, env=env).values():
            if "build" in service:
                assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def _docker_compose_v1(tmp_path: Path, files: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Copies the files without the top-level `name:` (which compose v1 predates) and runs `config -q`."""
    for name in files:
        text = (REPO / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(re.sub(r"(?m)^name: .*\n", "", text), encoding="utf-8")
    shutil.copytree(REPO / "docker", tmp_path / "docker", dirs_exist_ok=True)
    args = ["docker-compose", *(part for name in files for part in ("-f", name)), "--profile", "cpu", "config", "-q"]
    return subprocess.run(args, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (v1, Debian) not installed")
def test_docker_compose_config_accepts_the_files(tmp_path: Path) -> None:
    for files, env in ((ALL, ENV), (WORKER, WORKER_ENV)):
        result = _docker_compose_v1(tmp_path, files, env)
        assert result.returncode == 0, result.stderr
    result = _docker_compose_v1(tmp_path, REMOTE, {})
    assert result.returncode != 0 and "SSA_REDIS_PASSWORD" in result.stderr
