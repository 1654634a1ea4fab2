"""`ssa worker`: start a Celery worker for training jobs with the project's settings."""

from __future__ import annotations

import argparse
import logging

from jobs.producer import QUEUE
from worker.settings import WorkerSettings, worker_settings

log = logging.getLogger("ssa.worker")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `worker` subcommand (found through the `ssa.commands` entry point)."""
    parser = subparsers.add_parser("worker", help="run a training worker (Celery) that takes jobs from Redis")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="training jobs run at once by this worker (default SSA_WORKER_CONCURRENCY, 1)")
    parser.add_argument("--queues", default=QUEUE, help=f"comma list of queues to take jobs from (default {QUEUE})")
    parser.add_argument("--hostname", default=None, help="node name, e.g. gpu1@%%h (default celery@<host>)")
    parser.add_argument("--loglevel", default="INFO", help="log level (default INFO)")
    parser.set_defaults(handler=run_worker)


def worker_argv(args: argparse.Namespace, settings: WorkerSettings) -> list[str]:
    """The `celery worker` command line for `args`."""
    concurrency = args.concurrency or settings.worker_concurrency
    if concurrency < 1:
        raise SystemExit("ssa worker: --concurrency must be at least 1")
    argv = ["worker", f"--concurrency={concurrency}", f"--queues={args.queues}", f"--loglevel={args.loglevel}",
            "--pool=prefork", "--without-gossip", "--without-mingle", "--task-events"]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    return argv


def run_worker(args: argparse.Namespace) -> int:
    """Start the worker in this process; returns when it shuts down (SIGTERM: after the running job)."""
    from worker.celery_app import make_app

    settings = worker_settings()
    if settings.visibility_timeout_s <= settings.task_time_limit_s:
        log.warning("SSA_VISIBILITY_TIMEOUT_S (%d) is not above SSA_TASK_TIME_LIMIT_S (%d): a long job's message may "
                    "be delivered again while it runs (the job lease defers that copy)",
                    settings.visibility_timeout_s, settings.task_time_limit_s)
    make_app(settings).worker_main(worker_argv(args, settings))
    return 0
