"""What every benchmark does around its measurement: wait for a quiet machine, say whether it was, write the table."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

# 1-minute load average under which this 2-core machine counts as quiet before a run
QUIET_LOAD = 0.6


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's model name; platform.processor() elsewhere), or 'n/a'. Hosts of
    one kind differ (this project's 2-core machine has been an AMD EPYC and an Intel Xeon), so every result names it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "n/a"


def wait_until_quiet(seconds: float) -> float:
    """Wait up to `seconds` for the load average to fall below QUIET_LOAD; returns the load average then."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def quietness(load_before: float) -> str:
    return "quiet before it started" if load_before < QUIET_LOAD else "NOT quiet: the ratios are not evidence"


def write_results(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)
