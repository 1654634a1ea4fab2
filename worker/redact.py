"""What a job's readers may see of the worker's paths: job logs and job errors are served over the API
(GET /jobs/{id}, /jobs/{id}/log), so they name files relative to the job folder and never another absolute path
(the artifact store's root, the encoder's folder, site-packages). The worker's own log keeps the full text."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

HOME = "$SSA_HOME"
# An absolute path in free text: a slash that does not continue a word, a URL or a relative path, then at least one
# folder. What follows the last slash (the file's name) is kept.
_ABSOLUTE = re.compile(r"(?<![\w.~$:/-])/(?:[^\s/'\"()<>,:;]+/)+")


def redact_paths(text: str, job_dir: Path, home: Path) -> str:
    """`text` with paths under `job_dir` made relative to it, other paths under `home` starting at $SSA_HOME, and
    any other absolute path cut to its last part (`…/module.py`)."""
    for folder in _spellings(job_dir):
        text = text.replace(folder + "/", "").replace(folder, ".")
    for folder in _spellings(home):
        text = text.replace(folder, HOME)
    return _ABSOLUTE.sub("…/", text)


def _spellings(folder: Path) -> list[str]:
    """The folder as given and resolved (a symlinked store shows up either way), longest first."""
    names = {str(folder)}
    with contextlib.suppress(OSError):
        names.add(str(folder.resolve()))
    return sorted((name.rstrip("/") for name in names if name.strip("/")), key=len, reverse=True)
