"""The Celery configuration (every reliability setting from one settings object), settings, and `ssa worker`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError

from jobs.basemodels import parse_base_models, resolve_base_model
from jobs.producer import QUEUE, TASK_NAME
from tests.worker.procs import REPO
from worker.celery_app import celery_config, make_app
from worker.cli import register, run_worker, worker_argv
from worker.settings import WorkerSettings


def test_reliability_settings_come_from_the_settings() -> None:
    settings = WorkerSettings(redis_url="redis://example:6390/2", visibility_timeout_s=9000, task_soft_time_limit_s=100,
                              task_time_limit_s=200, max_memory_per_child_kb=123456, worker_concurrency=2)
    conf = celery_config(settings)
    assert conf["broker_url"] == conf["result_backend"] == "redis://example:6390/2"
    assert conf["accept_content"] == conf["result_accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 9000
    assert conf["result_backend_transport_options"]["visibility_timeout"] == 9000
    assert (conf["task_soft_time_limit"], conf["task_time_limit"]) == (100, 200)
    assert conf["worker_max_memory_per_child"] == 123456 and conf["worker_concurrency"] == 2
    # training, label tasks (plan, shards, merge) and probe shards share the one queue: every worker takes shards
    assert conf["task_routes"] == {name: {"queue": QUEUE} for name in (TASK_NAME, "ssa.label", "ssa.label-shard",
                                                                         "ssa.label-merge", "ssa.probe-shard")}


def test_restores_are_frequent_enough_for_a_short_visibility_timeout() -> None:
    short = celery_config(WorkerSettings(visibility_timeout_s=6, task_soft_time_limit_s=1, task_time_limit_s=2))
    assert short["broker_transport_options"]["unacked_restore_interval"] == 1
    assert short["broker_transport_options"]["unacked_mutex_expire"] == 3
    default = celery_config(WorkerSettings())
    assert default["broker_transport_options"]["unacked_restore_interval"] == 10
    assert default["broker_transport_options"]["unacked_mutex_expire"] == 300


def test_app_carries_the_configuration() -> None:
    app = make_app(WorkerSettings(visibility_timeout_s=777))
    assert app.conf.broker_transport_options["visibility_timeout"] == 777
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSA_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("SSA_LEASE_TTL_S", "30")
    settings = WorkerSettings()
    assert settings.max_attempts == 5 and settings.heartbeat_s == 10


def test_soft_limit_must_be_below_the_hard_limit() -> None:
    with pytest.raises(ValidationError, match="SSA_TASK_SOFT_TIME_LIMIT_S"):
        WorkerSettings(task_soft_time_limit_s=100, task_time_limit_s=100)


def test_base_model_allow_list() -> None:
    assert parse_base_models("minilm, tiny=/m/tiny ,") == {"minilm": None, "tiny": "/m/tiny"}
    assert resolve_base_model("tiny", "minilm,tiny=/m/tiny") == "/m/tiny"
    assert resolve_base_model("minilm", "minilm").endswith("model")
    with pytest.raises(ValueError, match=r"'bert' is not allowed on this worker \(allowed: minilm\)"):
        resolve_base_model("bert", "minilm")
    with pytest.raises(ValueError, match="write it as other=/path"):
        resolve_base_model("other", "other")
    with pytest.raises(ValueError, match="bad entry 'x='"):
        parse_base_models("x=")


def test_worker_command_defaults_to_one_job_per_worker() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["worker"])
    assert args.handler is run_worker
    argv = worker_argv(args, WorkerSettings())
    assert "--concurrency=1" in argv and f"--queues={QUEUE}" in argv and "--pool=prefork" in argv
    args = parser.parse_args(["worker", "--concurrency", "3", "--hostname", "gpu1@%h"])
    assert {"--concurrency=3", "--hostname=gpu1@%h"} <= set(worker_argv(args, WorkerSettings()))


def test_worker_command_is_found_through_the_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="ssa.commands")}
    assert found.get("worker") == "worker.cli:register"


def test_the_api_imports_no_task_code_and_no_torch() -> None:
    code = ("import sys; import service.app, service.routes.jobs, worker.celery_app; "
            "bad = [m for m in ('worker.tasks', 'worker.runner', 'torch', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_flower_can_load_the_tasks_without_torch() -> None:
    """Flower runs from the API image (no torch) and imports the app's task modules."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'transformers'):\n"
            "            raise ImportError(f'{name} is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from worker.celery_app import app\n"
            "app.loader.import_default_modules()\n"
            "assert 'ssa.train' in app.tasks, sorted(app.tasks)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("name", "value"), [("SSA_TRAIN_PROBE_FANOUT_ROWS", "-1"),
                                             ("SSA_TRAIN_PROBE_SHARD_ROWS", "0")])
def test_bad_fanout_settings_are_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch, name: str,
                                                         value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("SSA_").lower()):
        WorkerSettings()
