"""How much memory do dataset uploads cost the API, and do they slow predictions? The real API (`ssa serve`, a
uvicorn subprocess) takes one, then six parallel 45 MB training uploads (POST /jobs/ssa-train) while a client
measures /predict; the RSS of the API and of its child processes (the upload validation pool) together is sampled
from /proc/PID/status every 20 ms.

    python bench/upload_memory.py [--model DIR] [--mb 45] [--parallel 6]   -> bench/results/uploads.md

The upload: a CSV of valid-looking review rows (text,label) whose last row lacks its label, so every upload is
streamed, parsed and validated to the end and then rejected with 422 (as in issue 15's report): no job is queued
and no worker is needed. SSA_MAX_PARALLEL_UPLOADS is set to --parallel so that all of them are validated at once.
Targets: the API grows by at most 2× the bytes of the uploads in progress; /predict p50 during the uploads within 2×
of its idle value (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import quietness  # noqa: E402
from bench.serve_bench import Server, dev_texts, start_server, train_default  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "uploads.md"
API_KEY = "bench-uploads"
MEMORY_TARGET = 2.0
LATENCY_TARGET = 2.0
MiB = 1024 * 1024


@dataclass
class Phase:
    name: str
    uploads: int
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def p50_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[len(ordered) // 2] * 1000 if ordered else float("nan")


def make_upload(path: Path, size: int) -> int:
    """A CSV of `size` bytes (about): valid rows, then one without its label; its size in bytes."""
    rng = random.Random(0)
    words = [w for t in dev_texts(512) for w in t.split()]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("text,label\n")
        written = 11
        while written < size:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30))).replace('"', "'")
            line = f"\"{text}\",{rng.choice(('pos', 'neg'))}\n"
            out.write(line)
            written += len(line.encode())
        out.write("\"the last row has no label\",\n")
    return path.stat().st_size


def rss_mb(pid: int) -> float:
    """The RSS of `pid` and all its descendants (the API validates uploads in child processes). A child that is still
    a bare fork of the API (its command line the API's: spawned, not yet exec'd) is left out: its pages are the API's
    own, shared, and counting them would double the API for a moment."""
    total = 0.0
    mine = cmdline(pid)
    for each in [pid, *descendants(pid)]:
        if each != pid and cmdline(each) == mine:
            continue
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:  # ended meanwhile
            continue
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        total += int(values.get("VmRSS", "0 kB").split()[0]) / 1024
    return total


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


class Sampler:
    """The peak RSS of the API and its child processes while it runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def predict_while(url: str, texts: list[str], done: asyncio.Event, phase: Phase, least_s: float) -> None:
    import httpx

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        i = 0
        while not done.is_set() or time.perf_counter() - start < least_s:
            t0 = time.perf_counter()
            response = await http.post("/predict", json={"inputs": texts[i % len(texts)]})
            response.raise_for_status()
            phase.latencies.append(time.perf_counter() - t0)
            i += 1


async def upload(url: str, path: Path, phase: Phase) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=600, headers={"X-API-Key": API_KEY}) as http:
        with path.open("rb") as handle:
            response = await http.post("/jobs/ssa-train", files={"train": ("train.csv", handle, "text/csv")},
                                       data={"config": "{}"})
        phase.statuses.append(response.status_code)


async def run_phase(server: Server, texts: list[str], path: Path, phase: Phase) -> None:
    done = asyncio.Event()
    phase.rss_before_mb = rss_mb(server.process.pid)
    with Sampler(server.process.pid) as sampler:
        start = time.perf_counter()
        predicting = asyncio.create_task(predict_while(server.url, texts, done, phase, 5.0))
        await asyncio.gather(*(upload(server.url, path, phase) for _ in range(phase.uploads)))
        phase.seconds = time.perf_counter() - start
        done.set()
        await predicting
    phase.rss_peak_mb = sampler.peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model folder (default: train the serving benchmark's model)")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-cache", help="where the default model is kept")
    parser.add_argument("--mb", type=float, default=45.0, help="size of each upload in MB (10^6 bytes)")
    parser.add_argument("--parallel", type=int, default=6)
    args = parser.parse_args()
    model = args.model or args.work / "bench-minilm"
    if not (model / "model.onnx").is_file():
        train_default(model)
    texts = dev_texts(256)
    scratch = Path(tempfile.mkdtemp(prefix="ssa-bench-uploads-"))
    path = scratch / "train.csv"
    size = make_upload(path, int(args.mb * 1_000_000))
    load_before = os.getloadavg()
    env = {"SSA_API_KEY": API_KEY, "SSA_MAX_PARALLEL_UPLOADS": str(args.parallel),
           "SSA_REDIS_URL": os.environ.get("SSA_REDIS_URL", "redis://127.0.0.1:6379/15")}
    server = start_server(model, env)
    try:
        idle = Phase("idle (no upload)", 0)
        asyncio.run(run_phase(server, texts[:32], path, Phase("warm-up", 0)))
        asyncio.run(run_phase(server, texts, path, idle))
        one = Phase("1 upload", 1)
        asyncio.run(run_phase(server, texts, path, one))
        many = Phase(f"{args.parallel} parallel uploads", args.parallel)
        asyncio.run(run_phase(server, texts, path, many))
    finally:
        server.stop()
        path.unlink(missing_ok=True)
        scratch.rmdir()
    load_after = os.getloadavg()
    write_report(args, model, size, load_before, load_after, idle, [one, many])
    return 0


def write_report(args: argparse.Namespace, model: Path, size: int, load_before: tuple[float, ...],
                 load_after: tuple[float, ...], idle: Phase, phases: list[Phase]) -> None:
    command = (f"python bench/upload_memory.py{' --model ' + str(args.model) if args.model else ''} "
               f"--mb {args.mb:g} --parallel {args.parallel}")
    lines = [
        "# Dataset uploads: API memory and /predict latency", "",
        f"- machine: {platform.node() or 'unknown'}, {platform.processor() or platform.machine()}, CPU only, "
        f"{os.cpu_count()} cores",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}`",
        f"- load average (1 min) at start / end: {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"({quietness(load_before[0])}; the end includes the benchmark's own load: the API, its validation "
        "processes and the /predict client)",
        f"- upload: a {size / MiB:.1f} MiB CSV (text,label) whose last row lacks its label: each upload is streamed, "
        "parsed and validated to the end, then rejected with 422 (no job queued)",
        f"- model: `{model.name}`; SSA_MAX_PARALLEL_UPLOADS={args.parallel}; one /predict client, one sentence per "
        "request, during each phase",
        "- RSS: the API's process and its child processes (the upload validation pool) together", "",
        "| phase | uploads | statuses | seconds | RSS before MiB | RSS peak MiB | growth MiB | growth / bytes in "
        "progress | /predict requests | /predict p50 ms | p50 / idle |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = idle.p50_ms()
    for phase in [idle, *phases]:
        growth = phase.rss_peak_mb - phase.rss_before_mb
        ratio = f"{growth / (phase.uploads * size / MiB):.2f}×" if phase.uploads else "–"
        statuses = ", ".join(f"{s}×{phase.statuses.count(s)}" for s in sorted(set(phase.statuses))) or "–"
        lines.append(f"| {phase.name} | {phase.uploads} | {statuses} | {phase.seconds:.1f} | "
                     f"{phase.rss_before_mb:.0f} | {phase.rss_peak_mb:.0f} | {growth:.0f} | {ratio} | "
                     f"{len(phase.latencies)} | {phase.p50_ms():.1f} | {phase.p50_ms() / base:.2f}× |")
    verdicts = []
    for phase in phases:
        growth = (phase.rss_peak_mb - phase.rss_before_mb) / (phase.uploads * size / MiB)
        slow = phase.p50_ms() / base
        verdicts.append(f"{phase.name}: growth {growth:.2f}× the bytes in progress (target ≤ {MEMORY_TARGET:g}×: "
                        f"{'met' if growth <= MEMORY_TARGET else 'missed'}), /predict p50 {slow:.2f}× idle "
                        f"(target ≤ {LATENCY_TARGET:g}×: {'met' if slow <= LATENCY_TARGET else 'missed'})")
    lines += ["", *[f"- {v}" for v in verdicts], ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
