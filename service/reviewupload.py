"""A Label Studio export as a training upload (POST /jobs/ssa-train with a `train` file ending in .json): the tasks
Label Studio exports after a review (e.g. of a label job's `format=label-studio` tasks) become JSONL train rows with
their reviewed spans as `rationale_spans` (ssa_core.rationales.label_studio_rows), which then go through the same
validation as any train file. A task that does not fit is refused (422) with its number as the row and the field as
the column, before anything is queued. The export is parsed whole (it is at most SSA_MAX_UPLOAD_BYTES); the rows'
own checks run in the validation pool as for every upload."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from jobs.spec import TrainJobSpec
from service.jobsubmit import dataset_error
from service.uploads import Upload
from ssa_core.dataformats import DatasetError
from ssa_core.rationales import ReviewedColumns, is_label_studio_file, write_label_studio_as_jsonl

CONVERTED_SUFFIX: Final = ".jsonl"


def as_train_rows(upload: Upload, config: TrainJobSpec) -> Upload:
    """`upload` itself unless it is a Label Studio export; else the staged JSONL rows converted from it, under the
    uploaded name with .jsonl in place of .json (what job records and problems show). Raises ApiError 422."""
    if not is_label_studio_file(upload.filename):
        return upload
    columns = ReviewedColumns(text=config.text_column or "text", text_pair=config.text_pair_column or "text_pair",
                              label=config.label_column)
    target = upload.path.with_suffix(CONVERTED_SUFFIX)
    try:
        write_label_studio_as_jsonl(upload.path, target, upload.filename, columns)
    except DatasetError as exc:
        raise dataset_error(upload.field, exc) from None
    finally:
        upload.path.unlink(missing_ok=True)
    name = Path(upload.filename).with_suffix(CONVERTED_SUFFIX).name
    return Upload(upload.field, name, target, target.stat().st_size, upload.sha256)
