"""The job's own log file (`$SSA_HOME/jobs/<id>/log.txt`, served by GET /jobs/{id}/log), appended to by every
attempt. It is served to API readers, so it holds messages only: paths relative to the job folder (see
worker.redact) and no tracebacks, which reach the worker's own log (the job's logger propagates to it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs.folder import LOG_FILE
from worker.redact import redact_paths

FORMAT = "%(asctime)s %(levelname)s [attempt %(attempt)s] %(message)s"


class _AttemptFilter(logging.Filter):
    def __init__(self, attempt: int) -> None:
        super().__init__()
        self.attempt = attempt

    def filter(self, record: logging.LogRecord) -> bool:
        record.attempt = self.attempt
        return True


class PublicFormatter(logging.Formatter):
    """FORMAT with the message's paths redacted, and without the traceback or stack a record may carry."""

    def __init__(self, job_dir: Path, home: Path) -> None:
        super().__init__(FORMAT)
        self.job_dir, self.home = job_dir, home

    def format(self, record: logging.LogRecord) -> str:
        public = logging.makeLogRecord(record.__dict__)
        public.msg, public.args = redact_paths(record.getMessage(), self.job_dir, self.home), None
        public.exc_info, public.exc_text, public.stack_info = None, None, None
        return super().format(public)


@contextmanager
def job_logger(job_dir: Path, job_id: str, attempt: int, home: Path | None = None) -> Iterator[logging.Logger]:
    """A logger writing to the job's log file (and on to the worker's log); detached on exit. When the job folder
    is not writable, the logger still reaches the worker's log. `home`: the store root, redacted as $SSA_HOME
    (default: the job folder's grandparent, `<home>/jobs/<id>`)."""
    logger = logging.getLogger(f"ssa.job.{job_id}")
    logger.setLevel(logging.INFO)
    handler: logging.Handler | None = None
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(job_dir / LOG_FILE, encoding="utf-8")
    except OSError as exc:
        logging.getLogger("ssa.worker").warning("job %s: cannot write its log file: %s", job_id, exc)
    if handler is not None:
        handler.setFormatter(PublicFormatter(job_dir, home if home is not None else job_dir.parent.parent))
        handler.addFilter(_AttemptFilter(attempt))
        logger.addHandler(handler)
    try:
        yield logger
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
