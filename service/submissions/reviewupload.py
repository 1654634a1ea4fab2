"""A Label Studio export as a training upload (POST /jobs/ssa-train with a `train` file ending in .json): the tasks
Label Studio exports after a review (e.g. of a label job's `format=label-studio` tasks) become JSONL train rows with
their reviewed spans as `rationale_spans` (ssa_core.data.rationales.label_studio_rows), which then go through the same
validation as any train file. The conversion runs in the validation pool with the row checks
(service.submissions.uploadcheck_task.summarize), not in the API process: a task that does not fit is refused (422)
with its number as the row and the field as the column, before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from service.submissions.uploads import LabelStudioSource, Upload
from ssa_core.data.rationales import is_label_studio_file

CONVERTED_SUFFIX: Final = ".jsonl"


def as_train_rows(upload: Upload) -> Upload:
    """`upload` itself unless it is a Label Studio export; else the JSONL train file its validation writes, under the
    uploaded name with .jsonl in place of .json (what the job's record and the problems of its rows show)."""
    if not is_label_studio_file(upload.filename):
        return upload
    name = Path(upload.filename).with_suffix(CONVERTED_SUFFIX).name
    return Upload(upload.field, name, upload.path.with_suffix(CONVERTED_SUFFIX), upload.size, upload.sha256,
                  LabelStudioSource(upload.path, upload.filename))
