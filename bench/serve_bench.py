"""Serving benchmark: HF transformers pipeline vs the in-process ONNX runtime vs the HTTP service (real uvicorn).

    python bench/serve_bench.py [--model DIR] [--work DIR] [--texts 256] [--quantize]  -> bench/results/serving.md

Same model in every arm: the model a fresh deployment trains on its first start (`sentiment-minilm`: the first-start
job as `scripts/up.sh` submits it, on the shipped sample; trained here once into --work, through bench/first_start.py)
unless --model names a model folder; the pipeline runs a BertForSequenceClassification holding the same encoder
weights. Same inputs: the first N movie-sentiment dev sentences. The service returns per-token and
per-word attention for every input; the pipeline returns labels only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import QUIET_LOAD, cpu_model, quietness, wait_until_quiet, write_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "movie-sentiment"
SAMPLE = ROOT / "ssa_core" / "samples" / "sentiment"
RESULTS = ROOT / "bench" / "results" / "serving.md"


@dataclass
class Row:
    """One arm: how many texts, wall time, and the latency of every call (a call = one request / batch)."""

    arm: str
    texts: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def throughput(self) -> float:
        return self.texts / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


# ---- model and data --------------------------------------------------------------------------------------
def data_file(split: str) -> Path:
    return DATA / f"{split}.jsonl" if (DATA / f"{split}.jsonl").is_file() else SAMPLE / f"{split}.jsonl"


def dev_texts(n: int) -> list[str]:
    rows = [json.loads(line) for line in data_file("dev").read_text().splitlines() if line.strip()]
    return [row["text"] for row in rows[:n]]


def train_default(out: Path) -> Path:
    """The default MiniLM (6 layers), hybrid SSA, 500 training rows, 1 iteration, max_length 128."""
    from ssa_core.config import ModelConfig, TrainConfig, default_base_model
    from ssa_core.data.datasets import head, load_dataset, stratified_split
    from ssa_core.train.pipeline import train_model

    data = head(load_dataset(data_file("train")), 500)
    train, dev = stratified_split(data, dev_fraction=0.1, seed=0)
    cfg = ModelConfig(base_model=default_base_model(), method="hybrid", max_length=128, labels=data.labels)
    print(f"training the benchmark model into {out} (500 rows, 1 iteration) ...", flush=True)
    train_model(train, dev, cfg, TrainConfig(iterations=1), out, model_id="bench-minilm")
    return out


def first_start_model(given: Path | None, work: Path) -> Path:
    """The model folder the serving benchmarks measure: the one given, else the first-start model (`sentiment-minilm`,
    the model users get from `scripts/up.sh`), trained into `work` on first use."""
    if given is not None:
        return given
    model_dir = work / "sentiment-minilm"
    if not (model_dir / "model.onnx").is_file():
        from bench.first_start import train

        print(f"training the first-start model into {model_dir} ...", flush=True)
        train(None, model_dir)
    return model_dir


def benchmark_model(given: Path | None, work: Path) -> Path:
    """The model folder a benchmark measures: the one given, else the default one in `work` (trained on first use)."""
    if given is not None:
        return given
    model_dir = work / "bench-minilm"
    if not (model_dir / "model.onnx").is_file():
        train_default(model_dir)
    return model_dir


# ---- arms ------------------------------------------------------------------------------------------------
def hf_pipeline(model_dir: Path) -> Any:
    """text-classification pipeline on a plain BertForSequenceClassification loaded from the SSA folder: its encoder,
    pooler and classifier weights (the folder is in the Hugging Face layout; the SSA token head is left out)."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification, pipeline

    model = BertForSequenceClassification.from_pretrained(model_dir)
    torch.set_grad_enabled(False)
    return pipeline("text-classification", model=model.eval(), tokenizer=AutoTokenizer.from_pretrained(model_dir),
                    device=-1)


# (wall seconds, latency of every call or latency quantiles, texts done: None = all the arm's texts)
Timing = tuple[float, list[float]] | tuple[float, list[float], int]


@dataclass
class Arm:
    name: str
    note: str
    run: Callable[[], Timing]


def timed_calls(call: Callable[[Sequence[str]], Any], texts: Sequence[str], batch: int) -> Timing:
    latencies = []
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        t0 = time.perf_counter()
        call(texts[i : i + batch])
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - start, latencies


def pipeline_arms(model_dir: Path, texts: list[str]) -> list[Arm]:
    pipe = hf_pipeline(model_dir)
    pipe(texts[:8], batch_size=8)  # warm-up

    def arm(b: int) -> Arm:
        return Arm(f"HF pipeline, batch {b}", "labels only",
                   lambda: timed_calls(lambda chunk: pipe(list(chunk), batch_size=b, truncation=True), texts, b))

    return [arm(1), arm(8), arm(32)]


def concurrent_calls(call: Callable[[Sequence[str]], Any], texts: Sequence[str], batch: int,
                     callers: int) -> Timing:
    """`callers` threads take batches of `batch` texts in turn until all are done (as the service's inference
    workers do); the latency of a call is one batch's."""
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    latencies: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop(0)
            t0 = time.perf_counter()
            call(chunk)
            with lock:
                latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies


RUNTIME_PASSES = 4


def runtime_arms(model_dir: Path, texts: list[str], threads: int | None, label: str = "",
                 variant: str = "fp32") -> list[Arm]:
    """The runtime as the service uses it by default: idle threads sleep, length-sorted chunks of 8 inside a call
    (and an overlap session only where SSA_OVERLAP_THREADS' default asks for one); one caller at batch 1 and 32, and
    two callers at batch 32 (the service's two inference workers, without HTTP)."""
    from service.settings import Settings
    from ssa_core.runtime.predictor import Predictor

    predictor = Predictor.load(model_dir, provider="cpu", intra_op_threads=threads, allow_spinning=False,
                               overlap_threads=Settings(intra_op_threads=threads).overlap_threads,
                               variant=variant)
    predictor.predict(texts[:32])

    def call(chunk: Sequence[str]) -> Any:
        return predictor.predict(chunk, batch_size=8)

    # the batched arms go through the texts RUNTIME_PASSES times: about as long as a wrk arm, so that a lucky second
    # weighs as little in their best run as in the HTTP arms' they are compared with
    passes = texts * RUNTIME_PASSES

    def counted(timing: Timing) -> Timing:
        return timing[0], timing[1], len(passes)

    name = f"ONNX runtime{label} in-process"
    return [Arm(f"{name}, batch 1", "tokens + words + attention", lambda: timed_calls(call, texts, 1)),
            Arm(f"{name}, batch 32", "tokens + words + attention", lambda: counted(timed_calls(call, passes, 32))),
            Arm(f"{name}, batch 32, 2 callers", "tokens + words + attention",
                lambda: counted(concurrent_calls(call, passes, 32, 2)))]


def run_interleaved(arms: list[Arm], texts: list[str], repeats: int) -> list[Row]:
    """Every arm once per round, `repeats` rounds; per arm the fastest run (the least disturbed one on a shared
    machine). Interleaving spreads any change of the machine's load over all arms alike."""
    best: dict[str, Row] = {}
    for round_ in range(repeats):
        for arm in arms:
            timing = arm.run()
            done = timing[2] if len(timing) == 3 else len(texts)
            row = Row(arm.name, done, timing[0], timing[1], arm.note)
            print(f"  round {round_ + 1}: {arm.name}: {row.throughput:.1f}/s p50 {row.pct(0.5):.1f} ms", flush=True)
            if arm.name not in best or row.throughput > best[arm.name].throughput:
                best[arm.name] = row
    return [best[arm.name] for arm in arms]


# ---- HTTP ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`ssa serve --model DIR` in a subprocess with a fresh store; `code`: the checkout whose service runs (default:
    this one; bench/serve_ab.py starts two)."""

    def __init__(self, model_dir: Path, home: Path, env: dict[str, str], code: Path = ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "SSA_HOME": str(home), "SSA_BOOTSTRAP": "false", "SSA_LOG_LEVEL": "warning",
                       "PYTHONPATH": str(code), **env}
        command = [sys.executable, "-m", "ssa_core.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--model", str(model_dir)]
        self.home = home
        self.process = subprocess.Popen(command, env=environment, cwd=code)

    def wait_ready(self) -> None:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the server exited")
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def memory_mb(self) -> dict[str, float]:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {key: int(values[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}

    def torch_mapped(self) -> bool:
        return "libtorch" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


async def http_load(url: str, texts: list[str], clients: int, variant: str | None = None
                    ) -> tuple[float, list[float]]:
    """`clients` concurrent clients (one connection each) send one text per request until all are sent."""
    import httpx

    queue = list(reversed(texts))
    latencies: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while queue:
                text = queue.pop()
                t0 = time.perf_counter()
                body = {"inputs": text} if variant is None else {"inputs": text, "variant": variant}
                response = await http.post("/predict", json=body)
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies


def http_arms(server: Server, texts: list[str], label: str = "", variant: str | None = None) -> list[Arm]:
    asyncio.run(http_load(server.url, texts[:64], 8, variant))  # warm-up

    def arm(c: int) -> Arm:
        return Arm(f"HTTP service{label}, {c} client{'s' if c > 1 else ''}", "tokens + words + attention",
                   lambda: asyncio.run(http_load(server.url, texts, c, variant)))

    return [arm(1), arm(8), arm(32)]


WRK_SCRIPT = """
bodies = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local q = {}
  for p = 1, 99 do q[#q + 1] = latency:percentile(p) end
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "failed": %%d, "quantiles_us": [%%s]}\\n',
    summary.requests, summary.duration, failed, table.concat(q, ",")))
end
"""


def wrk_load(url: str, script: Path, clients: int, seconds: float) -> Timing:
    """wrk (one thread, a compiled client that costs the server little CPU) for `seconds` with `clients` open
    connections; the latencies returned are wrk's 1st..99th percentiles."""
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("WRK "))[4:])
    if summary["failed"]:
        raise RuntimeError(f"wrk: {summary['failed']} requests failed against {url}")
    return (summary["duration_us"] / 1e6, [q / 1e6 for q in summary["quantiles_us"]], summary["requests"])


# 64 connections hold as many texts in flight as the in-process reference (2 callers x batch 32)
WRK_CLIENTS = (1, 8, 32, 64)


def wrk_arms(server: Server, texts: list[str], work: Path, label: str = "", variant: str | None = None,
             seconds: float = 6.0) -> list[Arm]:
    """HTTP load from wrk, cycling through `texts` (each request one text)."""
    bodies = [{"inputs": t} if variant is None else {"inputs": t, "variant": variant} for t in texts]
    script = work / f"wrk{label.replace(' ', '-')}.lua"
    script.write_text(WRK_SCRIPT % ",".join(json.dumps(json.dumps(b)) for b in bodies))
    wrk_load(server.url, script, 8, 2)  # warm-up

    def arm(c: int) -> Arm:
        return Arm(f"HTTP service{label} (wrk), {c} client{'s' if c > 1 else ''}", "tokens + words + attention",
                   lambda: wrk_load(server.url, script, c, seconds))

    return [arm(c) for c in WRK_CLIENTS]


def start_server(model_dir: Path, env: dict[str, str], home: Path | None = None, code: Path = ROOT) -> Server:
    """A ready server; `home`: a store prepared beforehand (removed with the server), else a fresh one; `code`: the
    checkout to run."""
    server = Server(model_dir, home or Path(tempfile.mkdtemp(prefix="ssa-bench-home-")), env, code)
    server.wait_ready()
    return server


# ---- int8 ------------------------------------------------------------------------------------------------
def int8_copy(model_dir: Path, work: Path, check_texts: list[str]) -> tuple[Path, Any]:
    """A copy of the model folder with its int8 variant, made as `ssa export --quantize int8` makes it
    (ssa_core.export.quantize, default threshold), checked on `check_texts`. Where the product would refuse it, the
    fully quantized graph is written anyway (threshold at its floor) so that it can be timed; the report says which."""
    from ssa_core.export.quantize import QuantizationRefused, add_int8_variant

    out = work / f"{model_dir.name}-with-int8"
    shutil.rmtree(out, ignore_errors=True)
    skipped = shutil.ignore_patterns("model.safetensors", ".checkpoints", "model.int8.onnx")
    shutil.copytree(model_dir, out, ignore=skipped)
    try:
        return out, add_int8_variant(out, check_texts)
    except QuantizationRefused:
        return out, add_int8_variant(out, check_texts, min_agreement=1e-9)


def int8_lines(rows: list[Row], report: Any, checked: int, int8_dir: Path) -> list[str]:
    """The int8 variant against fp32, from this run's rows: speed ratios and the agreement check."""
    by_arm = {r.arm: r for r in rows}
    pairs = [("ONNX runtime in-process, batch 32", "ONNX runtime int8 in-process, batch 32", "throughput"),
             ("HTTP service, 8 clients", "HTTP service int8, 8 clients", "throughput"),
             ("HTTP service (wrk), 8 clients", "HTTP service int8 (wrk), 8 clients", "throughput"),
             ("HTTP service, 1 client", "HTTP service int8, 1 client", "p50")]
    lines = []
    for fp32, int8, what in pairs:
        if fp32 not in by_arm or int8 not in by_arm:
            continue
        a, b = by_arm[fp32], by_arm[int8]
        if what == "throughput":
            lines.append(f"- int8 vs fp32, {fp32.split(',')[0].lower()} {fp32.split(', ')[1]}: "
                         f"{b.throughput:.1f} vs {a.throughput:.1f} texts/s = {b.throughput / a.throughput:.2f}×")
        else:
            lines.append(f"- int8 vs fp32, HTTP 1 client p50: {b.pct(0.5):.1f} vs {a.pct(0.5):.1f} ms = "
                         f"{b.pct(0.5) / a.pct(0.5):.2f}×")
    from ssa_core.export.quantize import DEFAULT_MIN_AGREEMENT

    kept = report.agreement >= DEFAULT_MIN_AGREEMENT
    kept_fp32 = json.loads((int8_dir / "ssa.json").read_text())["variants"]["int8"].get("fp32_matmuls", 0)
    lines.append(f"- int8 label agreement with fp32 on {checked} dev sentences: {report.agreement:.2%}; the predicted "
                 f"class's probability differs by {report.score_mean_abs_diff:.4f} on average, a token's attention by "
                 f"at most {report.attention_max_abs_diff:.3f}; "
                 + (f"`ssa export --quantize int8` keeps it at the default threshold ({DEFAULT_MIN_AGREEMENT:.0%}), "
                    f"with {kept_fp32} of its MatMuls (feed-forward output projections) left in fp32 to get there"
                    if kept else f"`ssa export --quantize int8` refuses it at the default threshold "
                    f"({DEFAULT_MIN_AGREEMENT:.0%}) however many feed-forward projections it keeps in fp32; the rows "
                    "above time the fully quantized graph"))
    return lines


# ---- report ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChangedSetting:
    """The service with one setting changed, measured at 1 client (p50) and 64 clients (throughput) against its
    defaults; its arms are named "HTTP service, <label> (wrk), ..."."""

    label: str
    env: dict[str, str]
    description: str


CHANGED_SETTINGS = (
    ChangedSetting("overlap session", {"SSA_OVERLAP_THREADS": "1"},
                   "an overlap session (SSA_OVERLAP_THREADS=1: batches that start while another is in flight run on a "
                   "second, single-threaded ONNX Runtime session, lone batches on the main one with its threads "
                   "spinning within the run; the default: every batch on one session, its threads sleeping between "
                   "operators)"),
    ChangedSetting("no fast path", {"SSA_PREDICT_FAST_PATH": "false"},
                   "every request through the ASGI middleware stack (SSA_PREDICT_FAST_PATH=false; the default answers "
                   "ordinary /predict requests ahead of it, service/http/fastpath.py)"),
)


def setting_line(rows: list[Row], changed: ChangedSetting) -> str:
    """A changed setting's arms against the defaults' at 1 and 64 clients, from this run's rows."""
    by_arm = {r.arm: r for r in rows}
    one, many = by_arm["HTTP service (wrk), 1 client"], by_arm["HTTP service (wrk), 64 clients"]
    one_changed = by_arm[f"HTTP service, {changed.label} (wrk), 1 client"]
    many_changed = by_arm[f"HTTP service, {changed.label} (wrk), 64 clients"]
    return (f"- {changed.description} vs the defaults: 1-client p50 {one_changed.pct(0.5):.1f} vs "
            f"{one.pct(0.5):.1f} ms ({one_changed.pct(0.5) / one.pct(0.5):.2f}×), 64-client throughput "
            f"{many_changed.throughput:.1f} vs {many.throughput:.1f} texts/s "
            f"({many_changed.throughput / many.throughput:.2f}×)")


def service_defaults() -> str:
    """The service's batching settings as the arms ran them (the settings class's own defaults)."""
    from service.settings import Settings

    fields = Settings.model_fields
    names = ("max_batch_size", "max_wait_ms", "bucket_size", "inference_workers", "overlap_threads")
    return ", ".join(f"SSA_{name.upper()}={fields[name].default:g}" for name in names)


def table(rows: list[Row], best_pipeline: Row, single_pipeline: Row) -> list[str]:
    lines = ["| arm | texts/s | × pipeline best | p50 ms | p99 ms | p50 × pipeline batch 1 | returns |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.arm} | {r.throughput:.1f} | {r.throughput / best_pipeline.throughput:.2f} | "
                     f"{r.pct(0.5):.1f} | {r.pct(0.99):.1f} | {r.pct(0.5) / single_pipeline.pct(0.5):.2f} | {r.note} |")
    return lines


def conditions(background_load: int, load_before: float) -> str:
    if background_load:
        return f"under load on purpose: {background_load} busy-looping processes ran beside it"
    return quietness(load_before)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def target_lines(rows: list[Row], weights: str, best: Row, single: Row) -> list[str]:
    """Issue 14's three serving targets for one set of weights (fp32, or int8 where it passed the agreement check):
    the best HTTP arm against the pipeline's best and against the in-process runtime's best on the same weights,
    and one client's p50 against the pipeline at batch 1. The pipeline is the same model in fp32 (PyTorch)."""
    tag = "" if weights == "fp32" else f" {weights}"
    # the service with its default settings (the arms that change one are reported on their own lines)
    http = [r for r in rows if re.fullmatch(rf"HTTP service{tag}( \(wrk\))?, \d+ clients?", r.arm)]
    runtime = [r for r in rows if r.arm.startswith(f"ONNX runtime{tag} in-process")]
    best_http = max(http, key=lambda r: r.throughput)
    in_process = max(runtime, key=lambda r: r.throughput)
    one_client = min((r for r in http if r.arm.endswith(" 1 client")), key=lambda r: r.pct(0.5))
    return [
        f"- {weights}: HTTP throughput (best arm: {best_http.arm}) vs the pipeline's best ({best.arm}): "
        f"{best_http.throughput / best.throughput:.2f}× (target ≥ 1.5×, stretch 3×) — "
        f"{met(best_http.throughput >= 1.5 * best.throughput)}",
        f"- {weights}: HTTP throughput vs the in-process runtime's best on the same weights ({in_process.arm}): "
        f"{best_http.throughput / in_process.throughput:.2f}× (target ≥ 0.9×) — "
        f"{met(best_http.throughput >= 0.9 * in_process.throughput)}",
        f"- {weights}: p50 single-request latency, {one_client.arm} vs pipeline batch 1: {one_client.pct(0.5):.1f} ms "
        f"vs {single.pct(0.5):.1f} ms = {one_client.pct(0.5) / single.pct(0.5):.2f} (target ≤ 0.5) — "
        f"{met(one_client.pct(0.5) <= 0.5 * single.pct(0.5))}",
        f"- {weights}: stretch (3× the pipeline's best = {3 * best.throughput:.0f} texts/s): the best HTTP arm is "
        f"{best_http.throughput / (3 * best.throughput):.0%} of it; the runtime's best in process is "
        f"{in_process.throughput / best.throughput:.2f}× the pipeline",
    ]


def report(args: argparse.Namespace, model_dir: Path, texts: list[str], rows: list[Row], info: dict,
           extra: list[str], int8_kept: bool | None) -> str:
    pipeline_rows = [r for r in rows if r.arm.startswith("HF pipeline")]
    best = max(pipeline_rows, key=lambda r: r.throughput)
    single = pipeline_rows[0]
    targets = target_lines(rows, "fp32", best, single)
    if int8_kept:
        targets += target_lines(rows, "int8", best, single)
    elif int8_kept is False:
        targets.append("- int8: not a fair arm for the targets: it failed the agreement check (below)")
    meta = json.loads((model_dir / "ssa.json").read_text())
    lines = [
        "# Serving benchmark", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores ({cpu_model()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; load average "
        f"{info['load'][0]:.2f} before, {info['load'][1]:.2f} after the benchmark's own load "
        f"({conditions(args.background_load, info['load'][0])})"
        f"; best of {args.repeats} runs per arm",
        f"- command: `python bench/serve_bench.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- model: `{meta['model_id']}` ({meta['method']}, base {Path(str(meta['base_model'])).name}, "
        f"max_length {meta['max_length']}), {len(texts)} movie-sentiment dev sentences",
        "- latency = one call: one HTTP request (one text) / one pipeline or runtime call (one batch); the wrk arms "
        "report wrk's latency percentiles (wrk: a compiled load generator, one thread, each connection sends its next "
        "request when the last is answered, for a fixed time; the Python arms send the texts once)",
        f"- service settings: defaults ({service_defaults()}; ORT graph optimizations all, intra-op threads = "
        "cores, no spinning) unless an arm names one; the runtime arms run the same way", "",
        *table(rows, best, single), "",
        "## Targets", "",
        *targets,
        "- where an API thread's time goes under load: `bench/results/api-profile.md`",
        f"- API process memory serving this model: {info['VmRSS']:.0f} MB resident at the end, "
        f"{info['VmHWM']:.0f} MB peak (target ≤ 600 MB); libtorch mapped: {info['torch_mapped']}",
        *extra, "",
        "## Notes", "",
        "- In use: micro-batching (concurrent requests grouped into batches, waiting a few ms under load, and while "
        "another batch runs, until a burst of arrivals stops; two batches run at once by default, "
        "SSA_INFERENCE_WORKERS); ordinary POST /predict requests answered ahead of the ASGI middleware stack "
        "(service/http/fastpath.py) and the rest without FastAPI's per-request dependency solving "
        "(service/http/directroute.py); "
        "a batch is sorted by length and cut into runs of at most 8 wherever padding would cost more than an extra "
        "run (on CPU a run costs about 8 tokens, so unlike lengths run apart); ORT graph optimizations (all); idle "
        "ORT threads sleep instead of spinning (the event loop and tokenization keep their CPU); responses are "
        "rendered in the inference thread, off the event loop.",
        "- Arms are interleaved (each repeat runs every arm once) so that each sees the same load.",
        "- The in-process runtime is what the service could reach without HTTP; the gap to the HTTP rows is request "
        "handling plus the benchmark's own httpx clients, which share the same cores.",
        "- The int8 rows (with --quantize) serve the same model's int8 variant (`ssa export --quantize int8`: "
        "dynamic quantization, int8 weights per output channel, the most sensitive feed-forward projections kept in "
        "fp32 where the agreement check needs it), named per request with `\"variant\": \"int8\"`; "
        "fp32 stays the default (SSA_ONNX_VARIANT).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path,
                        help="model folder to serve (default: the first-start model, trained into --work)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench", help="cache of the trained model")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: cores)")
    parser.add_argument("--quantize", action="store_true",
                        help="also measure the int8 variant (ssa export --quantize int8), in process and over HTTP")
    parser.add_argument("--repeats", type=int, default=2, help="runs per arm; the fastest is reported")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help=f"first wait up to S seconds for the 1-minute load average to fall below {QUIET_LOAD}")
    parser.add_argument("--background-load", type=int, default=0, metavar="N",
                        help="run under load: N busy-looping processes for the whole run (started a minute before, "
                        "so that the load average shows them)")
    args = parser.parse_args()
    model_dir = first_start_model(args.model, args.work)
    texts = dev_texts(args.texts)
    env = {"SSA_INTRA_OP_THREADS": str(args.threads)} if args.threads else {}
    load_before = wait_until_quiet(args.wait_quiet)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.background_load)]
    if busy:
        time.sleep(60)
        load_before = os.getloadavg()[0]
    servers: list[Server] = []
    extra: list[str] = []
    try:
        servers.append(start_server(model_dir, env))
        arms = pipeline_arms(model_dir, texts) + runtime_arms(model_dir, texts, args.threads)
        arms += http_arms(servers[0], texts)
        if shutil.which("wrk"):
            arms += wrk_arms(servers[0], texts, args.work)
            # the same service with one inference worker (SSA_INFERENCE_WORKERS=1: one batch at a time), for the
            # gain of running two batches at once
            servers.append(start_server(model_dir, {**env, "SSA_INFERENCE_WORKERS": "1"}))
            arms += [arm for arm in wrk_arms(servers[-1], texts, args.work, ", 1 inference worker")
                     if arm.name.endswith(" 64 clients")]
            # the same service with an overlap session, and with every /predict request through the middleware stack:
            # what each gains alone and under load
            for changed in CHANGED_SETTINGS:
                servers.append(start_server(model_dir, {**env, **changed.env}))
                arms += [arm for arm in wrk_arms(servers[-1], texts, args.work, f", {changed.label}")
                         if arm.name.endswith((" 1 client", " 64 clients"))]
        checked = dev_texts(1000)
        if args.quantize:
            int8_dir, int8_report = int8_copy(model_dir, args.work, checked)
            arms += runtime_arms(int8_dir, texts, args.threads, " int8", "int8")
            servers.append(start_server(int8_dir, env))
            arms += http_arms(servers[-1], texts, " int8", variant="int8")
            if shutil.which("wrk"):
                arms += wrk_arms(servers[-1], texts, args.work, " int8", variant="int8")
        rows = run_interleaved(arms, texts, args.repeats)
        int8_kept: bool | None = None
        for changed in CHANGED_SETTINGS:
            if any(changed.label in row.arm for row in rows):
                extra.append(setting_line(rows, changed))
        if args.quantize:
            extra += int8_lines(rows, int8_report, len(checked), int8_dir)
            from ssa_core.export.quantize import DEFAULT_MIN_AGREEMENT

            int8_kept = int8_report.agreement >= DEFAULT_MIN_AGREEMENT
        info: dict[str, Any] = {**servers[0].memory_mb(), "torch_mapped": servers[0].torch_mapped()}
    finally:
        for server in servers:
            server.stop()
        info_load_after = os.getloadavg()[0]
        for process in busy:
            process.kill()
    info["load"] = (load_before, info_load_after)
    text = report(args, model_dir, texts, rows, info, extra, int8_kept)
    write_results(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
