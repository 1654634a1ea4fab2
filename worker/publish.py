"""Registering a trained model: storage checks and atomic publish into the artifact store."""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ssa_core.runtime.artifacts import ArtifactStore, atomic_write_text
from ssa_core.runtime.modelmeta import SSA_FILE, ModelMeta

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
STORAGE_PHRASES = ("no space left on device", "disk quota exceeded", "read-only file system", "storagefull",
                   "file too large", "permission denied")


class StorageError(RuntimeError):
    """The artifact store cannot take the job's files (not writable, or full): retrying the job cannot help."""


def storage_problem(exc: BaseException) -> str | None:
    """A one-line reason when `exc` (or what caused it) is a full or unwritable disk, else None. Some writers
    (safetensors, torch, ONNX) wrap the OSError in their own exception type, so the message is checked too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            return f"{current.strerror or current}{where}"
        text = str(current).lower()
        for phrase in STORAGE_PHRASES:
            if phrase in text:
                return phrase.replace("storagefull", "no space left on device")
        current = current.__cause__ or current.__context__
    return None


def check_writable(store: ArtifactStore) -> None:
    """Fail fast (before hours of training) when models/ or .staging/ cannot be written."""
    for folder in (store.staging_root, store.models_root):
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StorageError(f"the artifact store is not writable: {reason}: {folder} "
                               "(check the owner, permissions and free space of SSA_HOME)") from exc


@contextmanager
def job_staging(store: ArtifactStore, job_id: str) -> Iterator[Path]:
    """The job's staging folder under .staging/ (same filesystem as models/). What a killed attempt left there is
    removed first, and whatever is not published is removed on exit: a half-written model is never visible."""
    path = store.staging_root / f"job-{job_id}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stamp_job(staged: Path, job_id: str) -> None:
    """Record which job made the model, in its ssa.json (so that a re-run can recognise its own model)."""
    meta = ModelMeta.read(staged).with_values(job_id=job_id)
    atomic_write_text(staged / SSA_FILE, meta.to_json())


def publish(store: ArtifactStore, staged: Path, model_id: str, job_id: str) -> None:
    """Publish `staged` as `model_id`. An earlier attempt of the same job that published it already (and died
    before recording success) counts as done; another job's model under that id is an error."""
    stamp_job(staged, job_id)
    try:
        store.publish_model(staged, model_id)
    except FileExistsError:
        owner = store.get_model(model_id).meta.job_id
        if owner != job_id:
            raise StorageError(f"model id {model_id!r} is already taken by another model") from None
