"""The job folder's file names (`$SSA_HOME/jobs/<id>/`), written by the API and the worker, served by the API."""

from __future__ import annotations

import re
from typing import Final

CONFIG_FILE: Final = "config.json"  # the spec and data record as submitted (for people; Redis is the record)
LOG_FILE: Final = "log.txt"  # every attempt's log, appended
LABELS_DIR: Final = "labels"  # iter<k>.jsonl: weak token labels of iteration k
CHECKPOINTS_DIR: Final = "checkpoints"  # the resumable training state, removed when the job ends
LABEL_FILE: Final = re.compile(r"^iter(\d+)\.jsonl$")
