"""Where the API's time goes under load: py-spy samples the API process while wrk sends /predict requests.

    python bench/profile_api.py [--model DIR] [--clients 32] [--seconds 15] [--variant int8]
        -> bench/results/api-profile.svg (flame graph) and bench/results/api-profile.md (shares by part)

Needs `wrk` (Debian package) and `py-spy` (PyPI). Samples are taken from every thread of the API (the event loop,
the micro-batcher's inference thread, the occlusion lane) at 200 Hz; idle samples are left out, so a share is of the
time threads spent running Python or native code under it (ONNX Runtime's own threads are not Python threads: their
work shows as time inside `Session.run` of the thread that called it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model, quietness, wait_until_quiet, write_results  # noqa: E402
from bench.serve_bench import WRK_SCRIPT, dev_texts, first_start_model, start_server, wrk_load  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# Parts of a request, each named by a frame that marks it (the first match from the leaf up wins).
PARTS: list[tuple[str, str]] = [
    ("model run (ONNX Runtime Session.run)", "Session.run"),
    ("tokenization", "Predictor.encode"),
    ("spans and words (character offsets)", "ssa_core/data/textspans.py"),
    # the JSON rendering (orjson, native code) shows as time in the frame that calls it here
    ("response building (Python objects)", "service/inference/response.py"),
    ("batching and the rest of the inference thread", "service/inference/batcher.py"),
    ("HTTP handling (uvicorn, Starlette, FastAPI, middleware)", "uvicorn/"),
]


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, marker in PARTS:
            if marker in frame:
                return name
    return "other (event loop, asyncio, threads)"


def shares(raw: Path) -> tuple[int, Counter[str]]:
    """Samples, and samples per part, from py-spy's collapsed stacks ("frame;frame;... count")."""
    parts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        parts[part_of(stack.split(";"))] += int(count)
    return total, parts


def record(pid: int, seconds: float, out: Path, fmt: str) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                             "--threads", "--nonblocking", "--format", fmt, "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model folder (default: the serving benchmark's)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--variant", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    args = parser.parse_args()
    model_dir = first_start_model(args.model, args.work)
    load_before = wait_until_quiet(args.wait_quiet)
    server = start_server(model_dir, {})
    script = Path(tempfile.mkdtemp()) / "profile.lua"
    bodies = [{"inputs": t} if args.variant == "fp32" else {"inputs": t, "variant": args.variant}
              for t in dev_texts(256)]
    script.write_text(WRK_SCRIPT % ",".join(json.dumps(json.dumps(b)) for b in bodies))
    svg, raw = RESULTS / "api-profile.svg", Path(tempfile.mkdtemp()) / "api-profile.txt"
    try:
        wrk_load(server.url, script, args.clients, 3)  # warm-up
        # two recordings of the same load: the flame graph, and the collapsed stacks the table is computed from
        timings: list[tuple[float, int]] = []

        def load() -> None:
            timing = wrk_load(server.url, script, args.clients, 2 * args.seconds + 2)
            timings.append((timing[0], int(timing[2]) if len(timing) == 3 else 0))

        driver = threading.Thread(target=load)
        driver.start()
        record(server.process.pid, args.seconds, svg, "flamegraph").wait()
        record(server.process.pid, args.seconds, raw, "raw").wait()
        driver.join()
    finally:
        server.stop()
    seconds, requests = timings[0]
    total, parts = shares(raw)
    lines = [
        "# Where the API's time goes under load", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores ({cpu_model()}), "
        f"Python {platform.python_version()}; load "
        f"average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({quietness(load_before)})",
        f"- command: `python bench/profile_api.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- load: wrk, {args.clients} connections, one text per POST /predict (variant {args.variant}), "
        f"{requests / seconds:.1f} requests/s while sampled; py-spy at 200 Hz on every API thread, idle samples "
        f"left out, {total} samples; flame graph: `bench/results/api-profile.svg`",
        "",
        "| part | share of the samples |",
        "|---|---:|",
        *(f"| {name} | {count / total:.1%} |" for name, count in parts.most_common()),
        "",
    ]
    write_results(RESULTS / "api-profile.md", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
