"""The job's own log file (`$SSA_HOME/jobs/<id>/log.txt`, served by GET /jobs/{id}/log), appended to by every
attempt."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs.folder import LOG_FILE

FORMAT = "%(asctime)s %(levelname)s [attempt %(attempt)s] %(message)s"


class _AttemptFilter(logging.Filter):
    def __init__(self, attempt: int) -> None:
        super().__init__()
        self.attempt = attempt

    def filter(self, record: logging.LogRecord) -> bool:
        record.attempt = self.attempt
        return True


@contextmanager
def job_logger(job_dir: Path, job_id: str, attempt: int) -> Iterator[logging.Logger]:
    """A logger writing to the job's log file (and on to the worker's log); detached on exit. When the job folder
    is not writable, the logger still reaches the worker's log."""
    logger = logging.getLogger(f"ssa.job.{job_id}")
    logger.setLevel(logging.INFO)
    handler: logging.Handler | None = None
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(job_dir / LOG_FILE, encoding="utf-8")
    except OSError as exc:
        logging.getLogger("ssa.worker").warning("job %s: cannot write its log file: %s", job_id, exc)
    if handler is not None:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(_AttemptFilter(attempt))
        logger.addHandler(handler)
    try:
        yield logger
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
