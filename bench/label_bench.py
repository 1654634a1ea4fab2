"""Label jobs: throughput with 1 and 2 worker processes against the labeler in process, and a large corpus's memory.

    python bench/label_bench.py [--model DIR] [--rows 1200] [--shard-rows 100] [--big 100000]
        -> bench/results/labeling.md

Every arm labels the same unique movie-sentiment texts with the same model (default: the serving benchmark's 6-layer
MiniLM, trained on first use) and the same options (probes per row, batch budget):
- in process: `ssa_core.labeling.labeler.Labeler` on one ONNX Runtime thread, no queue, no files;
- label job, 1 worker / 2 workers: `POST /jobs/ssa-label` through the real API app (in this process), a private
  Redis and real `ssa worker` processes (one ONNX Runtime thread each, SSA_LABEL_THREADS=1), timed from submission
  to `succeeded` (queueing, shards, storage and the merge included), with the workers started and warm.
The large run labels `--big` unique texts (sentence pairs of the training split joined) with attention only (probes
0) on a 2-layer cut of the encoder, on 2 workers, sampling the peak resident memory of every worker process and of
this process (the API) while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import quietness, wait_until_quiet, write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "labeling.md"
MODEL_ID = "bench-label"


@dataclass
class JobRun:
    rows: int
    seconds: float
    shards: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


@dataclass
class MemorySampler:
    """Peak resident memory (MB) of process groups and of this process, sampled every `every` seconds."""

    groups: dict[str, int]  # name -> process group id
    stage: Callable[[], str] = lambda: ""  # the job's stage at each sample (labelling, merging, ...)
    every: float = 0.5
    peaks: dict[str, float] = field(default_factory=dict)
    timeline: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.every):
            now = {name: group_rss_mb(pgid) for name, pgid in self.groups.items()}
            now["this process (the API app; the in-process arm ran before)"] = rss_mb(os.getpid())
            self.timeline.append((time.monotonic() - start, now))
            self.stages.append(self.stage())
            for name, value in now.items():
                self.peaks[name] = max(self.peaks.get(name, 0.0), value)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in group `pgid` (a worker: its main process and its pool child)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    total += rss_mb(int(entry.name))
            except OSError:
                continue
    return total


# ---- data and models -------------------------------------------------------------------------------------
def train_texts() -> list[str]:
    from bench.serve_bench import data_file

    rows = [json.loads(line) for line in data_file("train").read_text().splitlines() if line.strip()]
    return list(dict.fromkeys(str(row["text"]) for row in rows))


def unique_rows(n: int) -> list[dict[str, Any]]:
    """`n` unique texts: the training texts, then pairs of them joined ("a b"), in a fixed order."""
    texts = train_texts()
    out = texts[:n]
    step = 1
    while len(out) < n:
        out += [f"{a} {texts[(i + step) % len(texts)]}" for i, a in enumerate(texts)][: n - len(out)]
        step += 1
    return [{"text": text} for text in out]


def two_layer_model(work: Path) -> Path:
    """The default encoder cut to 2 layers, trained for one iteration on 64 rows (memory and the pipeline are
    under test in the large run, not the model's speed)."""
    out = work / "label-2layer"
    if (out / "model.onnx").is_file():
        return out
    from transformers import AutoModel, AutoTokenizer

    from bench.serve_bench import data_file
    from ssa_core.config import ModelConfig, TrainConfig, default_base_model
    from ssa_core.data.datasets import head, load_dataset, stratified_split
    from ssa_core.train.pipeline import train_model

    encoder = work / "encoder-2layer"
    AutoModel.from_pretrained(default_base_model(), num_hidden_layers=2).save_pretrained(encoder)
    AutoTokenizer.from_pretrained(default_base_model()).save_pretrained(encoder)
    data = head(load_dataset(data_file("train")), 64)
    train, dev = stratified_split(data, dev_fraction=0.25, seed=0)
    cfg = ModelConfig(base_model=str(encoder), method="hybrid", max_length=64, labels=data.labels)
    train_model(train, dev, cfg, TrainConfig(iterations=1, batch_size=16), out, model_id="label-2layer",
                device="cpu")
    return out


# ---- arms ------------------------------------------------------------------------------------------------
def in_process(model_dir: Path, rows: list[dict[str, Any]], probes: int, batch: int) -> float:
    """Seconds the labeler takes for `rows` in this process on one ONNX Runtime thread."""
    from ssa_core.data.datasets import Example
    from ssa_core.labeling.labeler import Labeler, LabelOptions
    from ssa_core.runtime.predictor import Predictor

    predictor = Predictor.load(model_dir, provider="cpu", intra_op_threads=1, allow_spinning=False)
    examples = [Example(i, i + 1, row["text"], None, "") for i, row in enumerate(rows)]
    labeler = Labeler(predictor, LabelOptions(probes, batch), labelled=False)
    labeler.label(examples[:16], 0)  # warm-up
    start = time.perf_counter()
    for first in range(0, len(examples), 64):
        labeler.label(examples[first : first + 64], first)
    return time.perf_counter() - start


def label_job(stack: Any, rows: list[dict[str, Any]], config: dict[str, Any], timeout: float,
              submitted: Callable[[str], object] = lambda job_id: None) -> JobRun:
    from tests.worker.procs import jsonl

    start = time.monotonic()
    response = stack.client.post("/jobs/ssa-label", files={"data": ("rows.jsonl", jsonl(rows))},
                                 data={"config": json.dumps({"model_id": MODEL_ID, **config})})
    if response.status_code != 202:
        raise RuntimeError(f"the label job was refused: {response.text}")
    submitted(response.json()["job_id"])
    job = stack.wait_status(response.json()["job_id"], "succeeded", "failed", "cancelled", timeout=timeout)
    if job["status"] != "succeeded":
        raise RuntimeError(f"the label job ended {job['status']}: {job.get('error')}")
    return JobRun(len(rows), time.monotonic() - start, int(job.get("total_steps") or job.get("step") or 0))


def product_timings() -> dict[str, str]:
    """The worker's own lease, visibility and retry times (the test stack shortens them so that its tests of dead
    workers are quick; with a 6 s visibility timeout a merge longer than that was delivered to a second worker)."""
    from worker.settings import WorkerSettings

    names = ("visibility_timeout_s", "lease_ttl_s", "retry_delay_s", "reaper_interval_s")
    return {f"SSA_{name.upper()}": str(WorkerSettings.model_fields[name].default) for name in names}


def job_arms(model_dir: Path, rows: list[dict[str, Any]], config: dict[str, Any], work: Path) -> dict[int, JobRun]:
    """The same label job on 1 and on 2 warm workers."""
    from tests.worker.procs import RedisServer
    from tests.worker.stack import JobStack

    runs: dict[int, JobRun] = {}
    for workers in (1, 2):
        home = Path(tempfile.mkdtemp(prefix="label-bench-", dir=work))
        redis = RedisServer(home / "redis").start()
        stack = JobStack(home, redis, "minilm")
        try:
            stack.store.import_model(model_dir, MODEL_ID)
            stack.start_workers(*(f"w{i}" for i in range(workers)), **product_timings(), SSA_LABEL_THREADS="1")
            # warm-up: one small shard per worker, so that every worker has loaded the model
            label_job(stack, rows[: 8 * workers], {**config, "shard_rows": 8}, 300)
            runs[workers] = label_job(stack, rows, config, 3600)
            print(f"  {workers} worker(s): {runs[workers].rows_per_s:.1f} rows/s", flush=True)
        finally:
            stack.close()
            redis.stop()
            shutil.rmtree(home, ignore_errors=True)
    return runs


def big_run(model_dir: Path, rows: int, work: Path) -> tuple[JobRun, MemorySampler]:
    from tests.worker.procs import RedisServer
    from tests.worker.stack import JobStack

    home = Path(tempfile.mkdtemp(prefix="label-bench-big-", dir=work))
    redis = RedisServer(home / "redis").start()
    stack = JobStack(home, redis, "minilm", max_upload_bytes=512 * 2**20)
    try:
        stack.store.import_model(model_dir, MODEL_ID)
        workers = stack.start_workers("b0", "b1", **product_timings(), SSA_LABEL_THREADS="1")
        corpus = unique_rows(rows)
        groups = {f"worker {w.name}": os.getpgid(w.proc.pid) for w in workers if w.proc is not None}
        job_ids: list[str] = []

        def stage() -> str:
            job = stack.jobs.get(job_ids[0]) if job_ids else None
            return job.stage if job is not None and job.stage else ""

        with MemorySampler(groups, stage) as memory:
            run = label_job(stack, corpus, {"probes_per_row": 0, "shard_rows": 2000}, 7200, job_ids.append)
        return run, memory
    finally:
        stack.close()
        redis.stop()
        shutil.rmtree(home, ignore_errors=True)


# ---- report ----------------------------------------------------------------------------------------------
def flatness(memory: MemorySampler, name: str) -> str:
    """Resident memory of `name` in the first and the last quarter of the shards' phase (flat: about equal), then
    its peak while the shards were merged and at the end."""
    samples = [(sample[name], stage) for (_, sample), stage in zip(memory.timeline, memory.stages, strict=True)
               if name in sample]
    shards = [value for value, stage in samples if stage == "labelling"]
    if len(shards) < 8:
        return "too few samples"
    quarter = len(shards) // 4
    first, last = max(shards[:quarter]), max(shards[-quarter:])
    merging = [value for value, stage in samples if stage == "merging"]
    merge = f"; while merging {max(merging):.0f} MB at most" if merging else ""
    return (f"while the shards ran: {first:.0f} MB in the first quarter, {last:.0f} MB in the last{merge}; "
            f"{samples[-1][0]:.0f} MB at the end")


def report(args: argparse.Namespace, model_dir: Path, loads: tuple[float, float], rows: int, in_process_s: float,
           runs: dict[int, JobRun], big: tuple[JobRun, MemorySampler] | None) -> str:
    meta = json.loads((model_dir / "ssa.json").read_text())
    one, two = runs[1], runs[2]
    base = rows / in_process_s
    overhead = one.seconds / in_process_s - 1
    per_shard = (one.seconds - in_process_s) / max(one.shards, 1)
    lines = [
        "# Labeling benchmark", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; load "
        f"average {loads[0]:.2f} before, {loads[1]:.2f} after "
        f"({quietness(loads[0])})",
        f"- command: `python bench/label_bench.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- model: `{meta['model_id']}` ({meta['method']}, base {Path(str(meta.get('base_model'))).name}, max_length "
        f"{meta['max_length']}); {rows} unique movie-sentiment texts; probes per row {args.probes}, batch budget "
        f"{args.batch}, {args.shard_rows} rows per shard ({one.shards} shards)",
        "- every arm: 1 ONNX Runtime thread per process (SSA_LABEL_THREADS=1); one Celery task at a time per worker; "
        "the worker's default lease, visibility and retry times",
        "",
        "| arm | threads per worker | rows/s | × in process | seconds |",
        "|---|---:|---:|---:|---:|",
        f"| labeler in process (no queue, no files) | 1 | {base:.1f} | 1.00 | {in_process_s:.1f} |",
        f"| label job, 1 worker | 1 | {one.rows_per_s:.1f} | {one.rows_per_s / base:.2f} | {one.seconds:.1f} |",
        f"| label job, 2 workers | 1 | {two.rows_per_s:.1f} | {two.rows_per_s / base:.2f} | {two.seconds:.1f} |",
        "", "## Targets", "",
        f"- 2 workers vs 1: {two.rows_per_s / one.rows_per_s:.2f}× (target ≥ 1.8×) — "
        f"{'met' if two.rows_per_s >= 1.8 * one.rows_per_s else 'NOT met'}",
        f"- what the queue, shards and storage add to a row's cost (1 worker vs in process): {overhead:+.1%} "
        f"(target ≤ +15 %) — {'met' if overhead <= 0.15 else 'NOT met'}",
    ]
    if big is not None:
        run, memory = big
        peaks = ", ".join(f"{name} {peak:.0f} MB" for name, peak in sorted(memory.peaks.items()))
        lines += [
            f"- {run.rows} unique rows, attention only, 2-layer model, 2 workers: {run.rows_per_s:.0f} rows/s "
            f"({run.seconds:.0f} s, {run.shards} shards); peak resident memory: {peaks}",
            *(f"  - {name}: {flatness(memory, name)}" for name in sorted(memory.peaks)),
        ]
    model_line = f"- Measured here: a row costs {in_process_s / rows * 1000:.1f} ms of model time on one CPU thread"
    if per_shard > 0:
        ceiling = args.shard_rows / per_shard * 3600
        measured = [
            f"{model_line}, and a shard of {args.shard_rows} rows {per_shard:.2f} s more as a job (queue, model "
            "lookup, reading its rows, writing its part; the merge is included, spread over the shards).",
            f"- With the model's time taken to zero, one worker finishes at most {ceiling:,.0f} rows an hour at this "
            f"shard size, 10 workers {10 * ceiling:,.0f}: the ceiling the queue and storage set.",
        ]
        shard_cost = f"{per_shard:.2f} s / {args.shard_rows}"
    else:
        measured = [
            f"{model_line}; the job on 1 worker took {one.seconds:.1f} s against {in_process_s:.1f} s in process, so "
            "what the queue and storage add per shard is below what this run resolves (the two arms differ by no "
            "more than their noise), and no ceiling is computed from it."]
        shard_cost = f"the cost per shard of {args.shard_rows} rows as a job"
    lines += [
        "", "## Projection to 10 GPU workers", "",
        *measured,
        "- On a GPU the model time per row is what a GPU run must measure (bench/results/gpu.md when a GPU is lent; "
        f"none was here): rows/hour on 10 workers = 10 × 3600 / (model seconds per row + {shard_cost}).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model folder (default: the serving benchmark's, trained once)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--shard-rows", type=int, default=100)
    parser.add_argument("--probes", type=int, default=8, help="words probed per row")
    parser.add_argument("--batch", type=int, default=64, help="batch budget per ONNX Runtime run")
    parser.add_argument("--big", type=int, default=100_000, help="rows of the large run (0: skip it)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from bench.serve_bench import benchmark_model

    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = benchmark_model(args.model, args.work)
    small = two_layer_model(args.work) if args.big else None
    load_before = wait_until_quiet(args.wait_quiet)
    rows = unique_rows(args.rows)
    config = {"probes_per_row": args.probes, "batch_size": args.batch, "shard_rows": args.shard_rows}
    in_process_s = in_process(model_dir, rows, args.probes, args.batch)
    print(f"  in process: {len(rows) / in_process_s:.1f} rows/s", flush=True)
    runs = job_arms(model_dir, rows, config, args.work)
    big = big_run(small, args.big, args.work) if small is not None else None
    text = report(args, model_dir, (load_before, os.getloadavg()[0]), len(rows), in_process_s, runs, big)
    write_results(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
