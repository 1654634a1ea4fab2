"""Dataset uploads: each file is streamed to disk in chunks (never held whole in memory), hashed as it is written
and refused with 413 once it passes the limit; at most `max_parallel_uploads` submissions are validated at once
(beyond: 429 + Retry-After). The staged files are moved into the job folder once the job is accepted, and removed
otherwise."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from service.errors import ApiError, InvalidField
from ssa_core.data.formats import format_of
from ssa_core.data.rationales import is_label_studio_file
from ssa_core.runtime.artifacts import ArtifactStore

CHUNK = 1 << 20
RETRY_AFTER_S = 5
UPLOADS_DIR = ".uploads"


@dataclass(frozen=True)
class Upload:
    """One uploaded dataset file, staged on disk: the form field it came in, its file name (as uploaded; the only
    name ever shown to clients), where it is staged, its size and its SHA-256."""

    field: str
    filename: str
    path: Path
    size: int
    sha256: str
    label_studio: LabelStudioSource | None = None  # a Label Studio export, converted to `path` while validated


@dataclass(frozen=True)
class LabelStudioSource:
    """A staged Label Studio export (service.submissions.reviewupload): its path and its uploaded name."""

    path: Path
    filename: str


def stage_upload(field: str, filename: str | None, stream: IO[bytes], limit: int, folder: Path,
                 label_studio: bool = False) -> Upload:
    """Copy an uploaded file into `folder` chunk by chunk, refusing it with 413 as soon as it passes `limit`
    bytes (the partial copy is removed). `label_studio`: a .json file (a Label Studio export) is accepted too."""
    suffix = format_of(filename or "")
    if label_studio and filename and is_label_studio_file(filename):
        suffix = "json"
    if not filename or suffix is None:
        also = ", .json (a Label Studio export)" if label_studio else ""
        raise InvalidField(field, f"the file name must end in .jsonl, .csv, .tsv or .parquet{also} "
                           f"(got {filename!r})")
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, prefix=f"{field}-", suffix=f".{suffix}")
    path, digest, size = Path(name), hashlib.sha256(), 0
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "payload_too_large", f"{field}: the file is larger than {limit} bytes "
                                   "(SSA_MAX_UPLOAD_BYTES)", {"field": field, "limit": limit})
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Upload(field, filename, path, size, digest.hexdigest())


def keep(upload: Upload, target: Path) -> None:
    """Move a staged upload to its place in the job folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(upload.path), target)


class UploadSlots:
    """At most `limit` upload submissions at once; `slot()` refuses the next with 429 + Retry-After."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise ApiError(429, "too_many_uploads", f"{self.limit} dataset uploads are already being validated "
                           f"(SSA_MAX_PARALLEL_UPLOADS); retry in {RETRY_AFTER_S} s", {"limit": self.limit},
                           {"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self._free.release()


@contextmanager
def staging_folder(store: ArtifactStore) -> Iterator[Path]:
    """A fresh folder for one submission's uploads (under the artifact home, so that accepted files move into the
    job folder without a copy), removed with whatever is left in it at the end."""
    root = store.root / UPLOADS_DIR
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root, prefix="upload-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
