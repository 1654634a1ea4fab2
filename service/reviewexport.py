"""A succeeded label job's records as review tasks (GET /jobs/{id}/labels?format=label-studio|argilla), streamed
from its JSONL file; the conversion is `ssa_core.labeling.review`."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Final
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from jobs.records import Job
from ssa_core.labeling.files import read_jsonl
from ssa_core.labeling.review import ReviewFormat, classes_of, label_studio_config, review_stream

LABEL_CONFIG_HEADER: Final = "X-Label-Studio-Config"


def review_output(job: Job, path: Path, fmt: ReviewFormat) -> StreamingResponse:
    """Label Studio: a JSON array of tasks (the labeling config, percent-encoded, in the X-Label-Studio-Config header as
    well as in docs/API.md); Argilla: {"settings", "records"}."""
    classes = classes_of(islice(read_jsonl(path), 1))

    def chunks() -> Iterator[bytes]:
        for piece in review_stream(fmt, read_jsonl(path), classes):
            yield piece.encode("utf-8")

    suffix = "label-studio" if fmt == "label-studio" else "argilla"
    headers = {"Content-Disposition": f'attachment; filename="{job.id}-{suffix}.json"'}
    if fmt == "label-studio":
        headers[LABEL_CONFIG_HEADER] = quote(" ".join(label_studio_config(classes).split()), safe=" ")
    return StreamingResponse(chunks(), media_type="application/json", headers=headers)
