"""docker-compose.yml on a real Docker engine: built, started, trained, served, killed and restarted.

Selected with `-m compose` (pyproject's addopts leave it out of a plain `pytest` run; scripts/test.sh runs it as
its own check). It drives `docker compose` and HTTP from the host, in file order, on one project (`ssa-e2e`,
empty volumes at the start, `down -v` at the end) with the API and Flower on free host ports:

 1. both CPU images build (sizes printed; the API image has no torch);
 2. `up -d` with no .env and no SSA_API_KEY: all services healthy, the API generates its key and logs only how
    to read it; the worker trains and deploys the first-start model; /readyz, /predict with attention, the
    console and Flower answer; processes are not root; writes without the key are refused;
 3. a curl-submitted job trains and deploys;
 4. SIGKILL of the worker mid-job, then `up -d worker`: the job succeeds, once;
 5. SIGKILL of Redis with queued jobs, then `up -d redis`: they come back from the append-only file and run;
 6. `down` then `up -d`: models and the active model are kept;
 7. `up -d --scale worker=2`: two jobs run at once on two workers.

Test-only settings (an override file in a temporary folder, never in the repository): a smaller first-start job
(SSA_BOOTSTRAP_JOB) and a shorter job lease / reaper interval, so that a killed worker's job comes back in seconds
rather than a minute. SSA_COMPOSE_GPU=1 also builds the GPU images (large: CUDA torch, onnxruntime-gpu).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.deploy.composefile import REPO
from tests.deploy.conftest import COMPOSE_REPORT, free_port

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

PROJECT = "ssa-e2e"
IMAGES = {"api": "ssa-service-api:cpu", "worker": "ssa-service-worker:cpu"}
SERVICES = ("redis", "api", "worker", "flower")
SAMPLE = REPO / "ssa_core/samples/sentiment"
OVERRIDE = """\
services:
  api:
    environment:
      SSA_BOOTSTRAP_JOB: '{"iterations": 1, "max_length": 48, "batch_size": 16}'
      SSA_ACTIVE_POLL_S: "1"
  worker:
    environment:
      SSA_LEASE_TTL_S: "9"
      SSA_REAPER_INTERVAL_S: "3"
      SSA_RETRY_DELAY_S: "1"
"""
T = TypeVar("T")


def say(line: str) -> None:
    """A line for the test output (shown with the summary) and for docs/DEPLOY.md."""
    COMPOSE_REPORT.append(line)
    print(f"[compose-e2e] {line}", file=sys.stderr, flush=True)


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, every: float = 2.0,
             on_timeout: Callable[[], str] | None = None) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(every)


def engine_problem() -> str | None:
    for args, what in ((["docker", "info"], "the Docker engine"), (["docker", "compose", "version"], "docker compose")):
        if shutil.which(args[0]) is None:
            return "docker is not installed"
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            return f"{what} does not work: {(result.stderr or result.stdout).strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def engine() -> None:
    """A working engine and compose plugin: scripts/docker-engine.sh installs/starts them where it can."""
    if engine_problem() is not None:
        result = subprocess.run(["bash", str(REPO / "scripts/docker-engine.sh")], capture_output=True, text=True,
                                timeout=900, check=False)
        problem = engine_problem()
        if problem is not None:
            pytest.skip(f"NO DOCKER ENGINE, compose end-to-end test NOT RUN: {problem}; "
                        f"scripts/docker-engine.sh said: {result.stderr.strip()[-400:]}")
    base = subprocess.run(["bash", str(REPO / "scripts/base-images.sh")], capture_output=True, text=True,
                          timeout=900, check=False)
    assert base.returncode == 0, base.stderr
    say(base.stderr.strip().replace("\n", " | "))


class Compose:
    """`docker compose -p ssa-e2e -f docker-compose.yml -f <test override>` with a clean environment."""

    def __init__(self, folder: Path) -> None:
        override = folder / "override.yml"
        override.write_text(OVERRIDE, encoding="utf-8")
        empty_env = folder / "empty.env"  # a developer's .env must not leak in: this is the no-.env case
        empty_env.write_text("", encoding="utf-8")
        self.port, self.flower_port = free_port(), free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(("SSA_", "COMPOSE_"))}
        self.env.update({"SSA_PORT": str(self.port), "SSA_FLOWER_PORT": str(self.flower_port)})
        self.base = ["docker", "compose", "-p", PROJECT, "--env-file", str(empty_env),
                     "-f", str(REPO / "docker-compose.yml"), "-f", str(override)]
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.base, *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check:
            assert result.returncode == 0, f"docker compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def logs(self, *services: str, tail: int = 40) -> str:
        return self.run("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    def containers(self, service: str) -> list[str]:
        return self.run("ps", "-q", service).stdout.split()

    def inspect(self, container: str, template: str) -> str:
        return subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True, text=True,
                              timeout=60, check=True).stdout.strip()

    def health(self, service: str) -> list[str]:
        return [self.inspect(c, "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")
                for c in self.containers(service)]

    def wait_healthy(self, services: tuple[str, ...] = SERVICES, timeout: float = 240, replicas: int = 1) -> float:
        started = time.monotonic()

        def all_healthy() -> bool:
            return all(self.health(s) == ["healthy"] * (replicas if s == "worker" else 1) for s in services)

        wait_for(all_healthy, timeout, f"{services} to be healthy", every=2,
                 on_timeout=lambda: self.run("ps", "-a", check=False).stdout + self.logs(tail=30))
        return time.monotonic() - started


@pytest.fixture(scope="module")
def compose(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    stack = Compose(tmp_path_factory.mktemp("compose"))
    stack.run("down", "-v", "--remove-orphans", timeout=180)  # an earlier run's volumes: start empty
    yield stack
    print(stack.logs(tail=60), file=sys.stderr)
    stack.run("down", "-v", "--remove-orphans", timeout=180, check=False)


def rows(name: str, start: int, count: int) -> bytes:
    lines = (SAMPLE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return ("\n".join(lines[start:start + count]) + "\n").encode()


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.key = key

    def submit(self, model_id: str, train_rows: int, iterations: int = 1, offset: int = 0) -> str:
        config = {"base_model": "minilm", "method": "hybrid", "iterations": iterations, "max_length": 48,
                  "batch_size": 16, "deploy": "always", "model_id": model_id}
        files = {"train": ("train.jsonl", rows("train", offset, train_rows)), "dev": ("dev.jsonl", rows("dev", 0, 24))}
        response = self.http.post("/jobs/ssa-train", files=files, data={"config": json.dumps(config)},
                                  headers={"X-API-Key": self.key})
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def finished(self, job_id: str, timeout: float, logs: Callable[[], str]) -> dict[str, Any]:
        job = wait_for(lambda: (j := self.job(job_id))["status"] in ("succeeded", "failed", "cancelled") and j,
                       timeout, f"job {job_id} to finish", on_timeout=logs)
        assert job["status"] == "succeeded", (job["error"], logs())
        return job

    def models(self) -> dict[str, Any]:
        return dict(self.http.get("/models").json())


STATE: dict[str, Any] = {}


def api(compose: Compose) -> Api:
    return Api(compose.url, STATE["key"])


def test_images_build_and_the_api_image_has_no_torch(compose: Compose) -> None:
    started = time.monotonic()
    compose.run("build", timeout=1500)
    say(f"docker compose build (CPU images): {time.monotonic() - started:.0f} s")
    for image in IMAGES.values():
        size = int(compose.inspect(image, "{{.Size}}"))
        say(f"image {image}: {size / 1e6:.0f} MB")
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torch') is None else 3)"
    no_torch = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", IMAGES["api"], "-c", probe],
                              capture_output=True, text=True, timeout=120, check=False)
    assert no_torch.returncode == 0, f"torch is importable in the API image: {no_torch.stderr}"
    has_torch = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", IMAGES["worker"], "-c",
                                "import torch; print(torch.__version__)"], capture_output=True, text=True, timeout=180,
                               check=False)
    assert has_torch.returncode == 0 and "+cpu" in has_torch.stdout, has_torch.stdout + has_torch.stderr


def test_first_start_without_a_key_trains_deploys_and_serves(compose: Compose) -> None:
    started = time.monotonic()
    compose.run("up", "-d", timeout=300)
    healthy = compose.wait_healthy(timeout=300)
    say(f"up -d (empty volumes) to all four services healthy: {time.monotonic() - started:.0f} s")

    key = compose.run("exec", "-T", "api", "cat", "/data/api-key").stdout.strip()
    assert len(key) == 64
    assert compose.run("exec", "-T", "api", "stat", "-c", "%a %u", "/data/api-key").stdout.split() == ["600", "10001"]
    api_log = compose.run("logs", "--no-color", "api").stdout
    assert "docker compose exec api cat /data/api-key" in api_log
    assert key not in api_log, "the generated key must not reach the container log"
    STATE["key"] = key
    client = api(compose)

    def ready() -> dict[str, Any] | None:
        response = client.http.get("/readyz")
        return dict(response.json()) if response.status_code == 200 else None

    ready_body = wait_for(ready, 900, "/readyz (first-start model trained by the worker and deployed)", every=3,
                          on_timeout=lambda: client.http.get("/readyz").text + compose.logs("worker"))
    say(f"first start: /readyz ready {time.monotonic() - started:.0f} s after `up -d` "
        f"({time.monotonic() - started - healthy:.0f} s after all were healthy; first-start job shrunk to 1 "
        "iteration, max_length 48)")
    assert ready_body["model_id"] == "sentiment-minilm"
    jobs = client.http.get("/jobs").json()
    bootstrap = [job for job in jobs["jobs"] if job["model_id"] == "sentiment-minilm"]
    assert len(bootstrap) == 1 and bootstrap[0]["status"] == "succeeded"
    worker_host = compose.inspect(compose.containers("worker")[0], "{{.Config.Hostname}}")
    assert worker_host in (bootstrap[0]["worker"] or ""), "trained by the worker container"

    predicted = client.http.post("/predict", json={"inputs": ["A warm, funny and beautifully acted film."]})
    assert predicted.status_code == 200, predicted.text
    tokens = predicted.json()["predictions"][0]["tokens"]
    assert tokens and all(t["attention"] is not None for t in tokens)
    console = client.http.get("/")
    assert console.status_code == 200 and "<html" in console.text.lower()
    flower = httpx.get(f"http://127.0.0.1:{compose.flower_port}/healthcheck", timeout=10)
    assert flower.status_code == 200 and flower.text.strip() == "OK"


def test_processes_are_not_root_and_writes_need_the_key(compose: Compose) -> None:
    for service in SERVICES:
        top = [line.split() for line in compose.run("top", service).stdout.splitlines() if line.strip()]
        column = top[0].index("UID")  # SERVICE  #  UID  PID  PPID ...
        users = {words[column] for words in top[1:]}
        assert users and not users & {"root", "0"}, f"{service} runs processes as {users}"
        if service != "redis":
            uid = compose.run("exec", "-T", service, "id", "-u").stdout.strip()
            assert uid == "10001", f"{service}: uid {uid}"
    client = api(compose)
    files = {"train": ("train.jsonl", rows("train", 0, 8))}
    for headers in ({}, {"X-API-Key": "not-the-key"}):
        refused = client.http.post("/jobs/ssa-train", files=files, headers=headers)
        assert refused.status_code == 401, refused.text
    deploy = client.http.post("/models/sentiment-minilm/deploy")
    assert deploy.status_code == 401


def test_a_job_submitted_with_curl_trains_and_deploys(compose: Compose, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_bytes(rows("train", 0, 32))
    (tmp_path / "dev.jsonl").write_bytes(rows("dev", 0, 24))
    config = '{"iterations": 1, "max_length": 48, "batch_size": 16, "deploy": "always", "model_id": "curl-job"}'
    started = time.monotonic()
    result = subprocess.run(["curl", "-sS", "--fail-with-body", "-H", f"X-API-Key: {STATE['key']}",
                             "-F", "train=@train.jsonl", "-F", "dev=@dev.jsonl", "-F", f"config={config}",
                             f"{compose.url}/jobs/ssa-train"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    client = api(compose)
    job = client.finished(json.loads(result.stdout)["job_id"], 600, lambda: compose.logs("worker"))
    say(f"curl job (32 rows, 1 iteration): {time.monotonic() - started:.0f} s")
    assert job["deployed"] is True
    wait_for(lambda: client.http.get("/readyz").json().get("model_id") == "curl-job", 60, "the API to load curl-job")


def test_worker_killed_mid_job_finishes_it_once(compose: Compose) -> None:
    client = api(compose)
    started = time.monotonic()
    job_id = client.submit("killed-mid-job", train_rows=128)
    wait_for(lambda: (j := client.job(job_id))["status"] == "running" and (j["step"] or 0) > 0, 600,
             "the job to be training", every=1, on_timeout=lambda: compose.logs("worker"))
    compose.run("kill", "-s", "SIGKILL", "worker")
    worker = compose.run("ps", "-a", "-q", "worker").stdout.split()[0]
    assert compose.inspect(worker, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    compose.run("up", "-d", "worker")
    job = client.finished(job_id, 900, lambda: compose.logs("worker"))
    assert job["attempts"] == 2, job["attempts"]
    log = client.http.get(f"/jobs/{job_id}/log").text
    assert log.count("succeeded: model killed-mid-job") == 1, log
    assert [m["model_id"] for m in client.models()["models"]].count("killed-mid-job") == 1
    say(f"worker SIGKILLed mid-job, up -d worker, job succeeded on attempt 2: {time.monotonic() - started:.0f} s")


def test_redis_killed_with_queued_jobs_loses_none(compose: Compose) -> None:
    client = api(compose)
    started = time.monotonic()
    compose.run("stop", "worker", timeout=200)
    queued = [client.submit(f"queued-{i}", train_rows=32, offset=100 * i) for i in range(2)]
    assert all(client.job(job_id)["status"] == "queued" for job_id in queued)
    time.sleep(2.5)  # appendfsync everysec: the append-only file has them within a second
    compose.run("kill", "-s", "SIGKILL", "redis")
    redis = compose.containers("redis") or compose.run("ps", "-a", "-q", "redis").stdout.split()
    assert compose.inspect(redis[0], "{{.State.ExitCode}}") == "137", "killed, so Redis could not save on exit"
    restarted_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    compose.run("up", "-d", "redis")
    compose.wait_healthy(("redis",), timeout=120)
    redis_log = compose.run("logs", "--no-color", "--since", restarted_at, "redis").stdout
    assert "DB loaded from append only file" in redis_log, redis_log
    assert "DB loaded from disk" not in redis_log
    assert compose.run("exec", "-T", "redis", "redis-cli", "config", "get", "appendonly").stdout.split() == [
        "appendonly", "yes"]
    assert all(client.job(job_id)["status"] == "queued" for job_id in queued)
    compose.run("up", "-d", "worker")
    for job_id in queued:
        client.finished(job_id, 900, lambda: compose.logs("worker"))
    say(f"redis SIGKILLed with 2 queued jobs, back from the AOF, both succeeded: {time.monotonic() - started:.0f} s")


def test_down_and_up_keeps_models_and_the_active_model(compose: Compose) -> None:
    client = api(compose)
    before = client.models()
    compose.run("down", timeout=300)
    assert not compose.run("ps", "-a", "-q").stdout.split()
    started = time.monotonic()
    compose.run("up", "-d", timeout=300)
    compose.wait_healthy(timeout=300)
    after = client.models()
    assert before["active"] and after["active"] == before["active"]
    assert {m["model_id"] for m in after["models"]} == {m["model_id"] for m in before["models"]}
    wait_for(lambda: client.http.get("/readyz").json().get("model_id") == before["active"], 120, "/readyz")
    say(f"down + up -d (volumes kept) to healthy and ready: {time.monotonic() - started:.0f} s")
    assert compose.run("exec", "-T", "api", "cat", "/data/api-key").stdout.strip() == STATE["key"]


def test_two_workers_run_two_jobs_at_once(compose: Compose) -> None:
    client = api(compose)
    started = time.monotonic()
    compose.run("up", "-d", "--scale", "worker=2", timeout=300)
    compose.wait_healthy(("worker",), timeout=240, replicas=2)
    hosts = {compose.inspect(c, "{{.Config.Hostname}}") for c in compose.containers("worker")}
    assert len(hosts) == 2
    jobs = [client.submit(f"parallel-{i}", train_rows=64, offset=200 * i) for i in range(2)]

    def both_running() -> list[dict[str, Any]] | None:
        now = [client.job(job_id) for job_id in jobs]
        return now if all(j["status"] == "running" for j in now) else None

    running = wait_for(both_running, 600, "both jobs to run at once", every=1,
                       on_timeout=lambda: compose.logs("worker"))
    workers = {job["worker"] for job in running}
    assert len(workers) == 2 and all(any(h in (w or "") for h in hosts) for w in workers), workers
    for job_id in jobs:
        client.finished(job_id, 900, lambda: compose.logs("worker"))
    say(f"--scale worker=2, two jobs at once on two workers, both succeeded: {time.monotonic() - started:.0f} s")


def test_gpu_override_validates(compose: Compose) -> None:
    gpu = [*compose.base[:-2], "-f", str(REPO / "docker-compose.gpu.yml"), "config", "--format", "json"]
    result = subprocess.run(gpu, cwd=REPO, env=compose.env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    assert project["services"]["worker"]["build"]["args"]["VARIANT"] == "gpu"
    assert project["services"]["api"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_a_key_in_env_file_wins(compose: Compose, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SSA_API_KEY=from-dot-env\n", encoding="utf-8")
    args = ["docker", "compose", "-p", PROJECT, "--env-file", str(env_file), "-f", str(REPO / "docker-compose.yml"),
            "config", "--format", "json"]
    result = subprocess.run(args, cwd=REPO, env=compose.env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout)["services"]["api"]["environment"]["SSA_API_KEY"] == "from-dot-env"


@pytest.mark.skipif(os.environ.get("SSA_COMPOSE_GPU") != "1", reason="GPU images build on request only: "
                    "SSA_COMPOSE_GPU=1 (CUDA torch and onnxruntime-gpu are several GB)")
def test_gpu_images_build(compose: Compose) -> None:
    started = time.monotonic()
    gpu = [*compose.base[:-2], "-f", str(REPO / "docker-compose.gpu.yml"), "build"]
    result = subprocess.run(gpu, cwd=REPO, env=compose.env, capture_output=True, text=True, timeout=3000, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    say(f"GPU images build: {time.monotonic() - started:.0f} s")
    for image in ("ssa-service-api:gpu", "ssa-service-worker:gpu"):
        say(f"image {image}: {int(compose.inspect(image, '{{.Size}}')) / 1e6:.0f} MB")
