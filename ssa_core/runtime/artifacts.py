"""The artifact store: published model folders, job folders and the active-model pointer under one root.

Layout: <root>/models/<id>/ (model folders), <root>/jobs/<id>/, <root>/.staging/ (work in progress, same filesystem
so that publishing is one atomic rename) and <root>/active.json. Ids are validated and every path is checked to stay
under the root. Torch-free."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ssa_core.errors import InvalidId, NotFound
from ssa_core.runtime.modelmeta import METRICS_FILE, SSA_FILE, ModelMeta

log = logging.getLogger("ssa.artifacts")

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# The same rule (ID_PATTERN and no "..") as a regex without look-around, for JSON Schema (with maxLength 64).
SAFE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]|\.[a-z0-9_-])*\.?$"
ID_MAX_LENGTH = 64
_ID_RE = re.compile(ID_PATTERN)
ACTIVE_FILE = "active.json"
CHUNK = 1 << 20
INCOMPRESSIBLE = frozenset({".onnx", ".safetensors", ".bin", ".pt", ".ort"})


__all__ = ["ACTIVE_FILE", "ID_MAX_LENGTH", "ID_PATTERN", "SAFE_ID_PATTERN", "ArtifactStore", "InvalidId", "ModelInfo",
           "NotFound", "atomic_write_text", "folder_bytes", "read_model_info", "slugify", "validate_id"]


def validate_id(value: str, kind: str = "model id") -> str:
    """`value` itself when it is a safe id; raises InvalidId naming the rule it breaks."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        rule = "use 1-64 characters a-z 0-9 . _ - starting with a letter or digit"
        raise InvalidId(kind, value, f"is invalid: {rule}")
    if ".." in value:
        raise InvalidId(kind, value, "is invalid: '..' is not allowed")
    return value


def slugify(name: str) -> str:
    """A valid id made from an arbitrary name (lower case, other characters turned into '-')."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    slug = re.sub(r"\.{2,}", ".", slug)[:64].rstrip("-._")
    return slug or "model"


@dataclass(frozen=True)
class ModelInfo:
    """What the store knows about one published model: ssa.json fields plus metrics.json (`meta`: all of ssa.json)."""

    model_id: str
    version: str
    path: Path
    created_at: str | None
    method: str
    task: str
    labels: tuple[str, ...]
    max_length: int
    pair: bool
    base_model: str | None
    metric: str | None
    dev_metric: float | None
    meta: ModelMeta = field(repr=False)
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("meta")
        data["path"] = str(self.path)
        data["labels"] = list(self.labels)
        return data


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_model_info(model_dir: Path, model_id: str) -> ModelInfo:
    """ModelInfo from a model folder; raises ValueError when ssa.json is missing or malformed."""
    try:
        meta = ModelMeta.read(model_dir)
        metrics = _read_json(model_dir / METRICS_FILE) if (model_dir / METRICS_FILE).is_file() else None
        return ModelInfo(
            model_id=model_id, version=meta.version, path=model_dir, created_at=meta.created_at, method=meta.method,
            task=meta.task, labels=meta.labels, max_length=meta.max_length, pair=meta.pair,
            base_model=meta.base_model, metric=meta.metric, dev_metric=meta.dev_metric, metrics=metrics, meta=meta,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ModelMetaError is a ValueError
        raise ValueError(f"{model_dir}: unreadable model folder ({exc.__class__.__name__}: {exc})") from exc


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files under `folder` (symlinks not followed; 0 when it does not exist). Files or
    folders removed while it walks (a worker clearing its probe shards) are skipped: os.walk ignores a folder it can
    no longer list, where Path.rglob raises."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            try:
                if not path.is_symlink() and path.is_file():
                    total += path.stat().st_size
            except OSError:  # removed while we walked
                continue
    return total


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, fsync it, then rename it over `path`."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactStore:
    """Models, jobs and the active-model pointer under one root folder ($SSA_HOME)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.models_root = self.root / "models"
        self.jobs_root = self.root / "jobs"
        self.staging_root = self.root / ".staging"
        for folder in (self.models_root, self.jobs_root, self.staging_root):
            folder.mkdir(parents=True, exist_ok=True)

    # ---- paths ------------------------------------------------------------------------------------------
    def _contained(self, parent: Path, name: str, kind: str) -> Path:
        path = (parent / validate_id(name, kind)).resolve()
        if path.parent != parent.resolve():
            raise InvalidId(kind, name, "resolves outside the store")
        return path

    def model_dir(self, model_id: str) -> Path:
        """The folder of model `model_id` (which need not exist yet); raises InvalidId."""
        return self._contained(self.models_root, model_id, "model id")

    def job_dir(self, job_id: str) -> Path:
        """The folder of job `job_id` (which need not exist yet); raises InvalidId."""
        return self._contained(self.jobs_root, job_id, "job id")

    # ---- models -----------------------------------------------------------------------------------------
    def has_model(self, model_id: str) -> bool:
        return (self.model_dir(model_id) / SSA_FILE).is_file()

    def get_model(self, model_id: str) -> ModelInfo:
        """ModelInfo of a published model; raises InvalidId, NotFound (also for an unreadable folder)."""
        folder = self.model_dir(model_id)
        if not (folder / SSA_FILE).is_file():
            raise NotFound(f"model {model_id!r} not found")
        try:
            return read_model_info(folder, model_id)
        except ValueError as exc:
            raise NotFound(f"model {model_id!r} is unreadable: {exc}") from exc

    def list_models(self) -> list[ModelInfo]:
        """Every readable published model, newest first; unreadable folders are logged and skipped."""
        infos = []
        for folder in sorted(self.models_root.iterdir()):
            if folder.is_symlink() or not folder.is_dir() or not _ID_RE.fullmatch(folder.name):
                continue
            if ".." in folder.name or not (folder / SSA_FILE).is_file():
                continue
            try:
                infos.append(read_model_info(folder, folder.name))
            except ValueError as exc:
                log.warning("skipping model folder: %s", exc)
        return sorted(infos, key=lambda info: (info.created_at or "", info.model_id), reverse=True)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder on the store's filesystem; whatever is left of it (not published) is removed on exit."""
        path = Path(tempfile.mkdtemp(dir=self.staging_root, prefix="stage-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish_model(self, staged: Path, model_id: str) -> Path:
        """Move a complete staged model folder to models/<id> in one rename; FileExistsError if the id is taken.

        ssa.json's model_id is set to `model_id` first, so that the served id always matches the store's."""
        target = self.model_dir(model_id)
        staged = Path(staged)
        if not (staged / SSA_FILE).is_file():
            raise ValueError(f"{staged}: not a model folder (no {SSA_FILE})")
        meta = ModelMeta.read(staged)
        if meta.model_id != model_id:
            atomic_write_text(staged / SSA_FILE, meta.with_values(model_id=model_id).to_json())
        if target.exists():
            raise FileExistsError(f"model {model_id!r} already exists")
        try:
            os.rename(staged, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(f"model {model_id!r} already exists") from exc
            raise
        log.info("published model %s", model_id)
        return target

    def import_model(self, source: Path, model_id: str | None = None) -> str:
        """Copy an external model folder into the store (for `ssa serve --model DIR`); returns its id.

        The id is `model_id`, else ssa.json's model_id, else the folder name. When that id is already taken by a
        model of the same version, the existing one is reused; by another version, '-<version>' is appended."""
        source = Path(source)
        meta = read_model_info(source, "import").meta
        base = validate_id(model_id) if model_id else slugify(meta.model_id or source.name)
        version = meta.version
        for candidate in (base, slugify(f"{base[:51]}-{version}")):
            if not self.has_model(candidate):
                with self.staging() as stage:
                    shutil.copytree(source, stage, dirs_exist_ok=True, symlinks=False)
                    self.publish_model(stage, candidate)
                return candidate
            if self.get_model(candidate).version == version:
                return candidate
        raise FileExistsError(f"model ids {base!r} and {base}-{version} are both taken by other versions")

    # ---- active model -----------------------------------------------------------------------------------
    def active_model_id(self) -> str | None:
        """The id in active.json, or None when there is none (or the file is unreadable)."""
        try:
            value = _read_json(self.root / ACTIVE_FILE).get("model_id")
            return validate_id(value) if value is not None else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", ACTIVE_FILE, exc)
            return None

    def set_active_model(self, model_id: str) -> None:
        """Point active.json at a published model (atomic write); raises InvalidId, NotFound."""
        self.get_model(model_id)
        record = {"model_id": model_id, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_text(self.root / ACTIVE_FILE, json.dumps(record))

    # ---- disk use and removal -----------------------------------------------------------------------------
    def model_bytes(self, model_id: str) -> int:
        """Bytes of the model folder's regular files (0 when it is gone)."""
        return folder_bytes(self.model_dir(model_id))

    def job_bytes(self, job_id: str) -> int:
        """Bytes of the job folder's regular files (0 when it has none)."""
        return folder_bytes(self.job_dir(job_id))

    def withdraw_model(self, model_id: str) -> Path:
        """Move models/<id> out of the store's view in one rename (into .staging), so that no reader ever sees a
        half-deleted model; returns where it went (for `restore_model` or `discard`). Raises InvalidId, NotFound."""
        folder = self.model_dir(model_id)
        if not (folder / SSA_FILE).is_file():
            raise NotFound(f"model {model_id!r} not found")
        target = Path(tempfile.mkdtemp(dir=self.staging_root, prefix="removed-")) / model_id
        try:
            os.rename(folder, target)
        except FileNotFoundError:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise NotFound(f"model {model_id!r} not found") from None
        return target

    def restore_model(self, withdrawn: Path, model_id: str) -> None:
        """Put a withdrawn model folder back (a removal that was called off)."""
        os.rename(withdrawn, self.model_dir(model_id))
        shutil.rmtree(withdrawn.parent, ignore_errors=True)

    def discard(self, withdrawn: Path) -> None:
        """Delete a folder withdrawn into .staging (with the folder made for it)."""
        shutil.rmtree(withdrawn.parent if withdrawn.parent.parent == self.staging_root else withdrawn,
                      ignore_errors=True)

    def remove_job_folder(self, job_id: str) -> None:
        """Delete jobs/<id> (renamed into .staging first, then removed); nothing when there is none."""
        folder = self.job_dir(job_id)
        target = Path(tempfile.mkdtemp(dir=self.staging_root, prefix="removed-")) / job_id
        with suppress(FileNotFoundError):
            os.rename(folder, target)
        self.discard(target)

    # ---- download ---------------------------------------------------------------------------------------
    def archive_model(self, model_id: str) -> Iterator[bytes]:
        """A gzip-compressed tar of the model folder (entries under '<id>/'), streamed in chunks of about 1 MiB.

        Raises InvalidId / NotFound on the call, before the first chunk."""
        folder = self.get_model(model_id).path
        return _tar_gz_stream(folder, model_id)


def _tar_pieces(folder: Path, prefix: str) -> Iterator[tuple[bytes, bool]]:
    """The uncompressed tar stream of the regular files of `folder` (symlinks skipped), in pieces, each with
    whether it is worth compressing (weights are float noise to deflate)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    for path in files:
        info = tarfile.TarInfo(f"{prefix}/{path.relative_to(folder).as_posix()}")
        stat = path.stat()
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
        compress = path.suffix not in INCOMPRESSIBLE
        yield info.tobuf(format=tarfile.PAX_FORMAT), compress
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                yield chunk, compress
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE), compress
    yield b"\0" * (2 * tarfile.BLOCKSIZE), True


def _tar_gz_stream(folder: Path, prefix: str) -> Iterator[bytes]:
    """`_tar_pieces` gzip-compressed on the fly: deflate level 6 for text, stored blocks for weights, as
    consecutive gzip members (a valid .tar.gz). Empty chunks are not yielded."""
    level = 6
    gz = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
    for piece, compress in _tar_pieces(folder, prefix):
        wanted = 6 if compress else 0
        if wanted != level:
            yield gz.flush()
            level, gz = wanted, zlib.compressobj(wanted, zlib.DEFLATED, 31)
        if chunk := gz.compress(piece):
            yield chunk
    yield gz.flush()
