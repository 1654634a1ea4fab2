"""Cost curves: what a request, a loaded model and a labelled row cost as the load grows, as tables and plots.

    python bench/cost_curves.py [--model DIR] [--work DIR] [--seconds 10] [--repeats 2] [--wait-quiet S] [--quick]
        -> bench/results/cost-curves.md and bench/results/curve-*.png

About 11 minutes on a quiet 2-core machine with the defaults (7 points per curve, 10 s per HTTP point, best of 2
interleaved rounds), plus the benchmark model's training when --work has none yet; --quick (3 points per curve, 2 s
per HTTP point, one round) is a smoke run of under a minute on the 2-layer test model, not a measurement.

One run measures four curves on the serving benchmark's model (`bench/serve_bench.py`: the default 6-layer MiniLM,
hybrid SSA, trained into --work on first use, unless --model names a model folder):
1. length: HTTP latency (p50, p99) with one client and throughput with --length-clients clients against the input's
   length in tokens (the sequence the model runs, [CLS] and [SEP] included), 8 to 512; served from a copy of the
   model whose ssa.json max_length is raised to its position table's size (same ONNX graph: its sequence axis is
   dynamic);
2. concurrency: throughput, p50 and p99 against 1 to 64 open connections, at the dev sentences' median length;
3. memory: the API process's resident memory against the number of loaded models (1 to 4): copies of the model
   under other ids, each loaded by a request that names it (`"model": id`); the service keeps the deployed model and
   SSA_SIDE_MODELS others loaded (default 2), so this curve's server sets SSA_SIDE_MODELS to hold them all;
4. labelling: `ssa_core.labeling.labeler.Labeler` rows/s against the batch budget (inputs per ONNX Runtime run), in this
   process on one ONNX Runtime thread.
HTTP load comes from wrk (a compiled client, one thread); without wrk curves 1 and 2 are left out, said so in the file.
Each curve's sentence on where it bends is computed from this run's numbers; see the notes at the end of the file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import QUIET_LOAD, cpu_model, quietness, wait_until_quiet, write_results  # noqa: E402
from bench.serve_bench import (  # noqa: E402
    WRK_SCRIPT,
    Server,
    benchmark_model,
    dev_texts,
    start_server,
    wrk_load,
)

RESULTS = ROOT / "bench" / "results" / "cost-curves.md"
CURVES = ("length", "concurrency", "memory", "label")


@dataclass(frozen=True)
class Sizes:
    lengths: tuple[int, ...]  # tokens per input
    clients: tuple[int, ...]  # wrk connections
    models: int  # loaded at most
    budgets: tuple[int, ...]  # labeller's inputs per run at most


FULL = Sizes((8, 16, 32, 64, 128, 256, 512), (1, 2, 4, 8, 16, 32, 64), 4, (1, 4, 8, 16, 32, 64, 128))
QUICK = Sizes((8, 32, 128), (1, 4, 16), 3, (1, 8, 64))
SATURATION = 0.05  # throughput "stops rising" once no later point is more than 5 % above it
TEXTS_PER_LENGTH = 8  # distinct texts of each length, sent in turn


# ---- numbers ---------------------------------------------------------------------------------------------
@dataclass
class Point:
    """One measured point of an HTTP curve."""

    x: int
    requests: int
    seconds: float
    quantiles: list[float]  # seconds, wrk's 1st..99th percentiles
    batch_mean: float  # inputs per micro-batch, from the service's /metrics
    cpu_cores: float  # CPU seconds of the API process per wall second
    busy: float  # share of the inference workers' time spent running batches (tokenize, model, render)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def p50(self) -> float:
        return self.quantiles[49] * 1000

    @property
    def p99(self) -> float:
        return self.quantiles[98] * 1000

    @property
    def mean(self) -> float:
        """Mean latency in ms, estimated as the mean of wrk's 1st..99th percentiles."""
        return statistics.fmean(self.quantiles) * 1000


def exponents(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    """Local log-log slopes between neighbouring points: y grows as x**e on each segment."""
    return [math.log(ys[i + 1] / ys[i]) / math.log(xs[i + 1] / xs[i]) for i in range(len(xs) - 1)]


def loglog_bend(xs: Sequence[float], ys: Sequence[float]) -> tuple[int, float, float] | None:
    """The inner point where the local log-log slope changes most: (its index, slope before, slope after); None
    with fewer than three points."""
    slopes = exponents(xs, ys)
    if len(slopes) < 2:
        return None
    i = max(range(1, len(slopes)), key=lambda k: abs(slopes[k] - slopes[k - 1]))
    return i, slopes[i - 1], slopes[i]


def saturation(ys: Sequence[float], tolerance: float = SATURATION) -> int:
    """Index of the first point that no later point beats by more than `tolerance` (the last index: still rising)."""
    for i, y in enumerate(ys):
        if all(later <= y * (1 + tolerance) for later in ys[i + 1 :]):
            return i
    return len(ys) - 1


def marginal_bend(xs: Sequence[float], ys: Sequence[float]) -> tuple[int, list[float]] | None:
    """Marginal cost per step (dy/dx of each segment) and the inner point where it changes most; None with fewer
    than three points."""
    steps = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1)]
    if len(steps) < 2:
        return None
    return max(range(1, len(steps)), key=lambda k: abs(steps[k] - steps[k - 1])), steps


# ---- inputs ----------------------------------------------------------------------------------------------
def load_tokenizer(model_dir: Path) -> Any:
    from tokenizers import Tokenizer

    from ssa_core.runtime.modelmeta import TOKENIZER_FILE

    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def text_of_length(tokenizer: Any, source: str, tokens: int) -> str:
    """A prefix of `source` that encodes to exactly `tokens` ids ([CLS] and [SEP] included): cut after the
    (tokens - 2)th wordpiece, or a neighbouring one where a cut word encodes differently."""
    encoding = tokenizer.encode(source)
    content = tokens - 2
    if len(encoding.ids) - 2 < content + 8:
        raise ValueError(f"the source text is too short for {tokens} tokens")
    for shift in sorted(range(-6, 7), key=abs):
        cut = source[: encoding.offsets[content + shift][1]].rstrip()
        if len(tokenizer.encode(cut).ids) == tokens:
            return cut
    raise ValueError(f"no prefix of the source text encodes to {tokens} tokens")


def texts_of_length(tokenizer: Any, sentences: list[str], tokens: int, count: int = TEXTS_PER_LENGTH) -> list[str]:
    """`count` distinct texts of exactly `tokens` tokens: dev sentences joined from different starting points."""
    out = []
    for k in range(count):
        start, source = (k * 37) % len(sentences), ""
        i = start
        while len(tokenizer.encode(source).ids) < tokens + 16:
            source = f"{source} {sentences[i % len(sentences)]}".strip()
            i += 1
        out.append(text_of_length(tokenizer, source, tokens))
    return out


def median_length(tokenizer: Any, sentences: list[str]) -> int:
    return int(statistics.median(len(tokenizer.encode(s).ids) for s in sentences))


# ---- models ----------------------------------------------------------------------------------------------
def position_limit(model_dir: Path) -> int:
    """How many positions the encoder has (config.json's max_position_embeddings; 512 for BERT-like encoders)."""
    config = model_dir / "config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_position_embeddings")
        if isinstance(value, int) and value > 0:
            return value
    return 512


def long_input_copy(model_dir: Path, work: Path, max_length: int) -> Path:
    """A copy of the model folder whose ssa.json max_length is `max_length`: the same weights and the same ONNX
    graph (dynamic sequence axis), which the runtime then lets run longer inputs uncut."""
    from ssa_core.runtime.modelmeta import SSA_FILE, ModelMeta

    out = work / f"{model_dir.name}-len{max_length}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns("model.safetensors", ".checkpoints"))
    meta = ModelMeta.read(out)
    (out / SSA_FILE).write_text(meta.with_values(max_length=max_length).to_json())
    return out


def long_input_parity(model_dir: Path, long_dir: Path, text: str) -> dict[str, float] | None:
    """Largest difference between the copy's ONNX Runtime outputs and PyTorch's (the folder's weights) on one input
    of the copy's full length; None when the folder has no weights or torch is not installed."""
    if not (model_dir / "model.safetensors").is_file():
        return None
    try:
        import numpy as np
        import torch

        from ssa_core.export.folder import load_trained
    except ImportError:
        return None
    from ssa_core.runtime.predictor import Predictor

    model, _, _ = load_trained(model_dir)
    predictor = Predictor.load(long_dir, provider="cpu", allow_spinning=False)
    encoding = predictor.encode([text])[0]
    got = predictor.run([encoding])
    ids = torch.tensor([encoding.ids])
    with torch.no_grad():
        ref = model(ids, torch.ones_like(ids), torch.tensor([encoding.type_ids]))
    return {name: float(np.abs(getattr(ref, name).numpy() - got[name]).max()) for name in ("logits", "attention")}


# ---- the API under load --------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_sums(url: str) -> dict[str, float]:
    """The micro-batcher's counters from /metrics: batch sizes and inference seconds (sums and counts)."""
    import httpx

    wanted = ("ssa_batch_size_sum", "ssa_batch_size_count", "ssa_inference_seconds_sum")
    values = dict.fromkeys(wanted, 0.0)
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values


def lua_script(work: Path, name: str, texts: list[str]) -> Path:
    path = work / f"curve-{name}.lua"
    path.write_text(WRK_SCRIPT % ",".join(json.dumps(json.dumps({"inputs": t})) for t in texts))
    return path


def measure(server: Server, script: Path, clients: int, seconds: float, x: int) -> Point:
    """wrk with `clients` connections for `seconds` (doubled, up to 4 times, while fewer than 10 requests or two per
    client finish: long inputs under many clients); the API's CPU and batching over the same time."""
    duration = seconds
    while True:
        before, cpu0, t0 = metric_sums(server.url), cpu_seconds(server.process.pid), time.monotonic()
        timing = wrk_load(server.url, script, clients, duration)
        wall, quantiles, requests = timing[0], timing[1], timing[2] if len(timing) == 3 else 0
        if requests >= max(10, 2 * clients) or duration >= 4 * seconds:
            break
        duration *= 2
    if not requests:
        raise RuntimeError(f"no request finished in {duration:g} s ({clients} clients, x={x})")
    cpu, elapsed, after = cpu_seconds(server.process.pid) - cpu0, time.monotonic() - t0, metric_sums(server.url)
    batches = after["ssa_batch_size_count"] - before["ssa_batch_size_count"]
    batch_mean = (after["ssa_batch_size_sum"] - before["ssa_batch_size_sum"]) / batches if batches else 0.0
    inference = after["ssa_inference_seconds_sum"] - before["ssa_inference_seconds_sum"]
    workers = inference_workers()
    return Point(x, requests, wall, quantiles, batch_mean, cpu / elapsed, min(1.0, inference / (elapsed * workers)))


def inference_workers() -> int:
    """The micro-batcher's inference workers in the servers this script starts (the setting's default, or the
    SSA_INFERENCE_WORKERS this process passes on)."""
    from service.settings import Settings

    return int(os.environ.get("SSA_INFERENCE_WORKERS", Settings.model_fields["inference_workers"].default))


def best_of(runs: list[Callable[[], Point]], repeats: int, key: Callable[[Point], float]) -> list[Point]:
    """Every point once per round, `repeats` rounds; per point the run with the highest `key` (the least disturbed
    on a shared machine)."""
    best: list[Point | None] = [None] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            point = run()
            print(f"  x={point.x}: {point.throughput:.1f}/s p50 {point.p50:.1f} ms p99 {point.p99:.1f} ms "
                  f"batch {point.batch_mean:.1f} cpu {point.cpu_cores:.2f}", flush=True)
            current = best[i]
            if current is None or key(point) > key(current):
                best[i] = point
    return [p for p in best if p is not None]


@dataclass
class LengthCurve:
    max_length: int
    latency: list[Point]  # one client
    load: list[Point]  # --length-clients clients
    clients: int


def length_curve(server: Server, tokenizer: Any, sentences: list[str], lengths: Sequence[int], clients: int,
                 seconds: float, repeats: int, work: Path, max_length: int) -> LengthCurve:
    scripts = {n: lua_script(work, f"len{n}", texts_of_length(tokenizer, sentences, n)) for n in lengths}
    for n in lengths:  # warm-up: the runtime's buffers for each shape
        wrk_load(server.url, scripts[n], 4, 1)

    def run(n: int, c: int) -> Callable[[], Point]:
        return lambda: measure(server, scripts[n], c, seconds, n)

    print(f"length curve: 1 client, then {clients} clients", flush=True)
    latency = best_of([run(n, 1) for n in lengths], repeats, key=lambda p: -p.p50)
    load = best_of([run(n, clients) for n in lengths], repeats, key=lambda p: p.throughput)
    return LengthCurve(max_length, latency, load, clients)


def concurrency_curve(server: Server, tokenizer: Any, sentences: list[str], length: int, clients: Sequence[int],
                      seconds: float, repeats: int, work: Path) -> list[Point]:
    script = lua_script(work, f"conc{length}", texts_of_length(tokenizer, sentences, length))
    wrk_load(server.url, script, 8, 1)
    print(f"concurrency curve at {length} tokens", flush=True)

    def run(c: int) -> Callable[[], Point]:
        return lambda: measure(server, script, c, seconds, c)

    return best_of([run(c) for c in clients], repeats, key=lambda p: p.throughput)


@dataclass
class MemoryCurve:
    rss_mb: list[float]  # after 1..N loaded models
    onnx_mb: float  # model.onnx on disk
    side_limit: int  # the service's default SSA_SIDE_MODELS


def memory_curve(model_dir: Path, models: int, env: dict[str, str], text: str) -> MemoryCurve:
    """A server with `models` copies of the model in its store: the deployed one, then each copy loaded by a
    request naming it; the API's resident memory after each (and after a few requests to it)."""
    import httpx

    from service.settings import Settings
    from ssa_core.runtime.artifacts import ArtifactStore
    from ssa_core.runtime.modelmeta import ONNX_FILE

    home = Path(tempfile.mkdtemp(prefix="ssa-bench-home-"))
    store = ArtifactStore(home)
    ids = [store.import_model(model_dir, f"curve-model-{k}") for k in range(2, models + 1)]
    server = start_server(model_dir, {**env, "SSA_SIDE_MODELS": str(max(models - 1, 1))}, home)
    rss = []
    try:
        for model_id in [None, *ids]:
            body = {"inputs": text} if model_id is None else {"inputs": text, "model": model_id}
            for _ in range(5):
                httpx.post(f"{server.url}/predict", json=body, timeout=120).raise_for_status()
            time.sleep(1)
            rss.append(server.memory_mb()["VmRSS"])
            print(f"memory: {len(rss)} model(s) loaded: {rss[-1]:.0f} MB", flush=True)
    finally:
        server.stop()
    side_default = Settings.model_fields["side_models"].default
    return MemoryCurve(rss, (model_dir / ONNX_FILE).stat().st_size / 2**20, side_default)


@dataclass
class LabelPoint:
    budget: int
    rows: int
    inputs: int  # rows + probe copies through the model
    runs: int  # ONNX Runtime runs
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds


def label_curve(model_dir: Path, sentences: list[str], budgets: Sequence[int], rows: int,
                repeats: int) -> list[LabelPoint]:
    """The labeler (default probes per row) on `rows` dev sentences, one ONNX Runtime thread, per batch budget;
    per budget the fastest of `repeats` interleaved runs."""
    from ssa_core.data.datasets import Example
    from ssa_core.labeling.labeler import Labeler, LabelOptions
    from ssa_core.runtime.predictor import Predictor

    predictor = Predictor.load(model_dir, provider="cpu", intra_op_threads=1, allow_spinning=False)
    runs = 0
    run = predictor.run

    def counted(encodings: Any) -> Any:
        nonlocal runs
        runs += 1
        return run(encodings)

    predictor.run = counted  # type: ignore[method-assign]
    examples = [Example(i, i + 1, text, None, "") for i, text in enumerate(sentences[:rows])]
    labelers = {b: Labeler(predictor, LabelOptions(batch_size=b), labelled=False) for b in budgets}
    labelers[budgets[-1]].label(examples[:8], 0)  # warm-up
    best: dict[int, LabelPoint] = {}
    print("label curve", flush=True)
    for _ in range(repeats):
        for b in budgets:
            runs, start = 0, time.perf_counter()
            records = [r for first in range(0, len(examples), 64)
                       for r in labelers[b].label(examples[first : first + 64], first)]
            point = LabelPoint(b, len(records), len(records) + sum(r.probed_words for r in records), runs,
                               time.perf_counter() - start)
            print(f"  budget {b}: {point.rows_per_s:.1f} rows/s, {point.inputs / point.runs:.1f} inputs per run",
                  flush=True)
            if b not in best or point.seconds < best[b].seconds:
                best[b] = point
    return [best[b] for b in budgets]


# ---- plots -----------------------------------------------------------------------------------------------
def plot(path: Path, title: str, xlabel: str, panels: list[tuple[str, dict[str, tuple[Sequence[float],
         Sequence[float]]]]], log_x: bool = True, bends: Sequence[float | None] = ()) -> None:
    """One PNG: side-by-side panels, each {series label: (xs, ys)}; a dotted line marks each panel's computed bend
    (`bends`, one x or None per panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    marks = [*bends, *[None] * len(panels)]
    for ax, (ylabel, series), bend in zip(axes[0], panels, marks[: len(panels)], strict=True):
        for label, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o", label=label)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(list(next(iter(series.values()))[0]))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        if bend is not None:
            ax.axvline(bend, linestyle=":", color="grey", label="bend (computed)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if len(ax.get_legend_handles_labels()[0]) > 1:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the sentences -----------------------------------------------------------------------------------------
def length_section(curve: LengthCurve, out: Path) -> list[str]:
    xs = [p.x for p in curve.latency]
    c = curve.clients
    lines = [f"| tokens | p50 ms, 1 client | p99 ms, 1 client | inference workers busy, 1 client "
             f"| texts/s, {c} clients | tokens/s, {c} clients | p50 ms, {c} clients "
             f"| inputs per micro-batch, {c} clients |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for one, many in zip(curve.latency, curve.load, strict=True):
        lines.append(f"| {one.x} | {one.p50:.1f} | {one.p99:.1f} | {one.busy:.0%} | {many.throughput:.1f} | "
                     f"{many.throughput * many.x:.0f} | {many.p50:.1f} | {many.batch_mean:.1f} |")
    bend = loglog_bend(xs, [p.p50 for p in curve.latency])
    tokens_per_s = [p.throughput * p.x for p in curve.load]
    k = saturation(tokens_per_s)
    plot(out / "curve-length.png", "Cost against input length", "tokens per input",
         [("latency, ms (1 client)", {"p50": (xs, [p.p50 for p in curve.latency]),
                                      "p99": (xs, [p.p99 for p in curve.latency])}),
          (f"texts/s ({c} clients)", {"throughput": (xs, [p.throughput for p in curve.load])}),
          (f"tokens/s ({c} clients)", {"tokens/s": (xs, tokens_per_s)})],
         bends=[None if bend is None else xs[bend[0]], None, xs[k] if k < len(xs) - 1 else None])
    lines += ["", "![latency and throughput against input length](curve-length.png)", ""]
    lines.append(f"From {xs[0]} to {xs[-1]} tokens ({xs[-1] / xs[0]:.0f}× the tokens) the 1-client p50 grows "
                 f"{curve.latency[-1].p50 / curve.latency[0].p50:.1f}× and the {c}-client throughput falls "
                 f"{curve.load[0].throughput / curve.load[-1].throughput:.1f}×.")
    if bend is not None:
        i, before, after = bend
        head = (f"The 1-client p50 bends at {xs[i]} tokens: its log-log slope (latency ∝ tokens^slope) goes from "
                f"{before:.2f} to {after:.2f}, the largest change along the curve")
        if after > before:
            # latency = fixed + per_token * tokens has the local slope per_token * tokens / latency: the per-token share
            why = ("for a latency of a fixed cost plus a cost per token the slope is the per-token share, so below it "
                   f"about {min(1.0, max(0.0, 1 - before)):.0%} of a request's time is fixed whatever the length "
                   "(HTTP, JSON, the micro-batcher, the ONNX Runtime call, rendering the response), ")
            if after <= 1:
                why += (f"past it about {max(0.0, 1 - after):.0%}: the encoder's compute, which grows with the tokens, "
                        "takes over")
            else:
                why += ("past it the latency grows faster than the tokens (slope above 1): the self-attention's cost, "
                        "which grows with the square of the length, outgrows the rest")
        else:
            why = (f"past it a doubling of the tokens adds less ({2**after - 1:.0%}) than before it "
                   f"({2**before - 1:.0%}), which the model's compute does not explain (it only grows per token): "
                   "the segment before it was probably disturbed; compare the p99 column and rerun on a quiet machine")
        lines.append(f"{head}: {why}.")
    if k < len(xs) - 1:
        peak = max(tokens_per_s)
        tail = (f"; at {xs[-1]} tokens they fall to {tokens_per_s[-1] / peak:.0%} of the best: the self-attention's "
                "cost per token grows with the length" if tokens_per_s[-1] < (1 - SATURATION) * peak else "")
        lines.append(f"With {c} clients the tokens per second stop rising (within {SATURATION:.0%}) at {xs[k]} "
                     f"tokens ({tokens_per_s[k]:.0f} tokens/s): below it the fixed cost per request limits the "
                     f"throughput, from it on the encoder's compute per token does{tail}.")
    else:
        lines.append(f"With {c} clients the tokens per second still rise at {xs[-1]} tokens (by more than "
                     f"{SATURATION:.0%}): the fixed cost per request limits the throughput over the whole range.")
    return lines


def concurrency_section(points: list[Point], length: int, max_batch: int, cores: int, out: Path) -> list[str]:
    xs = [p.x for p in points]
    lines = ["| clients | texts/s | p50 ms | p99 ms | inputs per micro-batch | inference workers busy | API CPU, "
             "cores |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {p.x} | {p.throughput:.1f} | {p.p50:.1f} | {p.p99:.1f} | {p.batch_mean:.1f} | {p.busy:.0%} | "
              f"{p.cpu_cores:.2f} |" for p in points]
    i = saturation([p.throughput for p in points])
    plot(out / "curve-concurrency.png", f"Cost against concurrency ({length} tokens per input)", "clients (wrk "
         "connections)", [("latency, ms", {"p50": (xs, [p.p50 for p in points]), "p99": (xs, [p.p99 for p in points])}),
                         ("texts/s", {"throughput": (xs, [p.throughput for p in points])})],
         bends=[None, xs[i] if i < len(xs) - 1 else None])
    lines += ["", "![latency and throughput against concurrency](curve-concurrency.png)", ""]
    at = points[i]
    if i == len(points) - 1:
        lines.append(f"Throughput still rises at {at.x} clients (by more than {SATURATION:.0%} over every earlier "
                     f"point): no bend within the range measured ({at.batch_mean:.1f} inputs per micro-batch, "
                     f"inference workers busy {at.busy:.0%}, the API used {at.cpu_cores:.2f} of {cores} cores).")
        return lines
    full = at.batch_mean >= 0.9 * max_batch
    size = f"{at.batch_mean:.1f} inputs, {'full at' if full else 'of at most'} SSA_MAX_BATCH_SIZE={max_batch}"
    if at.busy >= 0.9:
        why = (f"the micro-batcher's {inference_workers()} inference worker(s) are busy {at.busy:.0%} of the time "
               f"there, so batches run back to back and more clients only make them larger ({size}); a larger "
               f"batch saves the fixed cost per request but not the encoder's compute per input (the API used "
               f"{at.cpu_cores:.2f} of {cores} cores)")
    elif full:
        why = f"the micro-batches are full there ({size}), so more clients only queue"
    elif at.cpu_cores >= 0.85 * cores:
        why = (f"the API process keeps the cores busy there ({at.cpu_cores:.2f} of {cores}) while its inference "
               f"workers are busy only {at.busy:.0%} of the time: HTTP and JSON on the event loop compete with the "
               f"model for the cores ({size})")
    else:
        why = (f"neither the inference workers ({at.busy:.0%} busy) nor the cores ({at.cpu_cores:.2f} of {cores} used "
               f"by the API) nor the micro-batches ({size}) are full there: the limit is the serial request path "
               "(the single event-loop thread handling HTTP and JSON)")
    last = points[-1]
    lines.append(f"Throughput stops rising (within {SATURATION:.0%}) at {at.x} clients, {at.throughput:.1f} texts/s: "
                 f"{why}. Past it the latency grows with the clients as queueing predicts (Little's law: mean latency "
                 f"= clients / throughput = {last.x / last.throughput * 1000:.0f} ms at {last.x} clients; measured "
                 f"mean {last.mean:.0f} ms, p50 {last.p50:.0f} ms).")
    return lines


def memory_section(curve: MemoryCurve, out: Path) -> list[str]:
    xs = list(range(1, len(curve.rss_mb) + 1))
    lines = ["| loaded models | API resident memory, MB | added by this model, MB |", "|---:|---:|---:|"]
    lines += [f"| {n} | {mb:.0f} | {'' if n == 1 else f'{mb - curve.rss_mb[n - 2]:.0f}'} |"
              for n, mb in zip(xs, curve.rss_mb, strict=True)]
    bend = marginal_bend(xs, curve.rss_mb)
    steps = [b - a for a, b in zip(curve.rss_mb, curve.rss_mb[1:], strict=False)]
    linear = bool(steps) and all(abs(s - statistics.fmean(steps)) <= 0.2 * abs(statistics.fmean(steps)) for s in steps)
    plot(out / "curve-memory.png", "API resident memory against loaded models", "loaded models",
         [("resident memory, MB", {"VmRSS": (xs, curve.rss_mb)})], log_x=False,
         bends=[None if bend is None or linear else xs[bend[0]]])
    lines += ["", "![API memory against loaded models](curve-memory.png)", ""]
    if not steps:
        return lines
    mean = statistics.fmean(steps)
    lines.append(f"Each model after the first adds {mean:.0f} MB on average (model.onnx is {curve.onnx_mb:.0f} MB on "
                 f"disk: {mean / curve.onnx_mb:.2f}× its size); the first one, with the process, {curve.rss_mb[0]:.0f} "
                 "MB.")
    if linear or bend is None:
        lines.append(f"No bend: every step is within 20 % of their mean ({min(steps):.0f} to {max(steps):.0f} MB), "
                     "memory is linear in the models loaded: each model has its own ONNX Runtime session(s) (weights "
                     "and buffers) and tokenizer, nothing is shared between them.")
    else:
        i, marginal = bend
        why = ("that model cost more than the ones before it: each has its own ONNX Runtime session, so the extra is "
               "the allocator's (arena growth or fragmentation); rerun on a quiet machine to see whether it repeats"
               if marginal[i] > marginal[i - 1] else
               "memory freed by the allocator, or pages of earlier models not yet touched, offset part of the new "
               "model")
        lines.append(f"The marginal cost changes most at {xs[i]} models ({marginal[i - 1]:.0f} MB, then "
                     f"{marginal[i]:.0f} MB per model): {why}.")
    if len(curve.rss_mb) > curve.side_limit + 1:
        lines.append(f"The service itself keeps {curve.side_limit + 1} loaded at most (the deployed model and "
                     f"SSA_SIDE_MODELS={curve.side_limit} named by requests, by default); this run set SSA_SIDE_MODELS "
                     "so that all could stay loaded at once.")
    return lines


def label_section(points: list[LabelPoint], out: Path) -> list[str]:
    xs = [p.budget for p in points]
    lines = ["| batch budget (most inputs per run) | rows/s | model inputs/s (rows + probe copies) | inputs per run, "
             "mean |", "|---:|---:|---:|---:|"]
    lines += [f"| {p.budget} | {p.rows_per_s:.2f} | {p.inputs_per_s:.0f} | {p.inputs / p.runs:.1f} |"
              for p in points]
    i = saturation([p.rows_per_s for p in points])
    plot(out / "curve-label.png", "Labelling throughput against the batch budget (1 thread)",
         "batch budget (most inputs per ONNX Runtime run)",
         [("rows/s", {"rows/s": (xs, [p.rows_per_s for p in points])})], bends=[xs[i] if i < len(xs) - 1 else None])
    lines += ["", "![labelling throughput against the batch budget](curve-label.png)", ""]
    copies = points[0].inputs / points[0].rows
    if i == len(points) - 1:
        lines.append(f"Rows/s still rise at a budget of {xs[i]} (by more than {SATURATION:.0%} over every earlier "
                     f"point): no bend within the range measured; each row is {copies:.1f} model inputs (itself and "
                     "its probe copies).")
        return lines
    peak = max(points, key=lambda p: p.rows_per_s)
    at = points[i]
    if points[-1].rows_per_s < (1 - SATURATION) * peak.rows_per_s:
        tail = (f"; larger budgets lose (at {xs[-1]}, {points[-1].inputs / points[-1].runs:.1f} inputs per run: "
                f"{points[-1].rows_per_s / peak.rows_per_s:.0%} of the best): the runtime fills a run as long as its "
                "cost model (the padded tokens plus 8 per run) says it pays, and on one thread a large run costs more "
                "per input than that model assumes")
    else:
        tail = "; larger budgets change little"
    lines.append(f"Rows/s stop rising (within {SATURATION:.0%}) at a budget of {xs[i]} ({at.rows_per_s:.2f} rows/s, "
                 f"{at.rows_per_s / points[0].rows_per_s:.1f}× a budget of {xs[0]}; runs of "
                 f"{at.inputs / at.runs:.1f} inputs on average): each row is {copies:.1f} model inputs (itself and its "
                 "probe copies), and as runs grow the fixed cost of a run (Python, the ONNX Runtime call) is shared by "
                 f"more inputs until it is small against the compute per input, which one thread does one input after "
                 f"another{tail}.")
    return lines


# ---- the run ---------------------------------------------------------------------------------------------
def header(args: argparse.Namespace, model_dir: Path, load: tuple[float, float], sizes: Sizes,
           done: list[str], settings: Any) -> list[str]:
    meta = json.loads((model_dir / "ssa.json").read_text())
    return [
        "# Cost curves", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores ({cpu_model()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; load average "
        f"{load[0]:.2f} before, {load[1]:.2f} after the benchmark's own load ({quietness(load[0])})",
        f"- command: `python bench/cost_curves.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- model: `{meta['model_id']}` ({meta['method']}, base {Path(str(meta['base_model'])).name}, max_length "
        f"{meta['max_length']}); curves measured: {', '.join(done) or 'none'}",
        f"- HTTP points: wrk (one thread) for {args.seconds:g} s each, best of {args.repeats} interleaved rounds; "
        f"service settings: SSA_MAX_BATCH_SIZE={settings.max_batch_size}, SSA_MAX_WAIT_MS={settings.max_wait_ms:g}, "
        f"SSA_BUCKET_SIZE={settings.bucket_size}, SSA_INTRA_OP_THREADS="
        f"{args.threads or settings.intra_op_threads or 'unset (one per core)'}, SSA_OVERLAP_THREADS="
        f"{overlap_text(settings)}, no spinning",
        f"- sizes: {json.dumps(asdict(sizes))}", ""]


def overlap_text(settings: Any) -> str:
    """SSA_OVERLAP_THREADS as the servers started here run it: each loaded model's second session, or none."""
    threads = settings.overlap_threads
    return f"{threads} ({'an overlap session of that many intra-op threads' if threads else 'no overlap session'})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model folder (default: the serving benchmark's, in --work)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench", help="cache of the trained model")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file; the PNGs go beside it")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk time per HTTP point")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per curve; per point the best is reported")
    parser.add_argument("--length-clients", type=int, default=16, help="clients of the length curve's throughput")
    parser.add_argument("--label-rows", type=int, default=32, help="dev sentences labelled per budget")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads of the API (default: cores)")
    parser.add_argument("--only", default=",".join(CURVES),
                        help=f"comma list of the curves to measure ({', '.join(CURVES)}); the results file then "
                        "holds only these")
    parser.add_argument("--quick", action="store_true", help="few points, 2 s each, one round (a smoke run)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help=f"first wait up to S seconds for the 1-minute load average to fall below {QUIET_LOAD}")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if unknown := set(only) - set(CURVES):
        parser.error(f"unknown curves: {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else FULL
    if args.quick:
        args.seconds, args.repeats, args.label_rows = min(args.seconds, 2.0), 1, min(args.label_rows, 16)
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.out.parent
    model_dir = benchmark_model(args.model, args.work)
    env = {"SSA_INTRA_OP_THREADS": str(args.threads)} if args.threads else {}
    sentences = dev_texts(1000)
    tokenizer = load_tokenizer(model_dir)
    typical = median_length(tokenizer, sentences)
    cores = os.cpu_count() or 1
    from service.settings import Settings

    settings = Settings()  # what the servers started here read (they inherit this environment)
    max_batch = settings.max_batch_size
    have_wrk = shutil.which("wrk") is not None
    load_before = wait_until_quiet(args.wait_quiet)
    sections: list[str] = []
    done: list[str] = []
    if "length" in only or "concurrency" in only:
        if not have_wrk:
            sections += ["## Length and concurrency", "", "Not measured: wrk is not installed (apt-get install wrk).",
                         ""]
        else:
            limit = position_limit(model_dir)
            lengths = [n for n in sizes.lengths if n <= limit]
            long_dir = long_input_copy(model_dir, args.work, limit)
            parity = long_input_parity(model_dir, long_dir, texts_of_length(tokenizer, sentences, limit, 1)[0])
            checked = ("not compared with PyTorch (no weights in the folder, or no torch)" if parity is None else
                       f"at {limit} tokens its outputs differ from PyTorch's on the folder's weights by at most "
                       f"{parity['logits']:.1e} (logits) and {parity['attention']:.1e} (attention)")
            server = start_server(long_dir, env)
            try:
                if "length" in only:
                    curve = length_curve(server, tokenizer, sentences, lengths, args.length_clients, args.seconds,
                                         args.repeats, args.work, limit)
                    sections += ["## 1. Latency and throughput against input length", "",
                                 f"Served from a copy of the model with ssa.json max_length {limit} (the encoder's "
                                 f"position table; same weights, same ONNX graph), which the deploy gate loaded "
                                 f"and ran at {limit} tokens with finite scores; {checked}. Each length: "
                                 f"{TEXTS_PER_LENGTH} dev-sentence texts cut to exactly that many tokens ([CLS] and "
                                 "[SEP] included), sent in turn."
                                 + ("" if len(lengths) == len(sizes.lengths) else
                                    f" Lengths past {limit} were left out: the encoder has {limit} positions."), "",
                                 *length_section(curve, out), ""]
                    done.append("length")
                if "concurrency" in only:
                    points = concurrency_curve(server, tokenizer, sentences, typical, sizes.clients,
                                               args.seconds, args.repeats, args.work)
                    sections += ["## 2. Latency and throughput against concurrency", "",
                                 f"Each request one text of {typical} tokens (the median of {len(sentences)} dev "
                                 "sentences), cut from dev sentences like the length curve's.", "",
                                 *concurrency_section(points, typical, max_batch, cores, out), ""]
                    done.append("concurrency")
            finally:
                server.stop()
    if "memory" in only:
        memory = memory_curve(model_dir, sizes.models, env, sentences[0])
        sections += ["## 3. API resident memory against loaded models", "",
                     "VmRSS of the API process after each model is loaded and has answered 5 requests: the deployed "
                     "model, then copies of it under other ids in the store, each loaded by a request naming it.", "",
                     *memory_section(memory, out), ""]
        done.append("memory")
    if "label" in only:
        points_l = label_curve(model_dir, sentences, sizes.budgets, args.label_rows, args.repeats)
        sections += ["## 4. Labelling throughput against the batch budget", "",
                     f"`ssa_core.labeling.labeler.Labeler` (default probes per row) on {points_l[0].rows} dev "
                     "sentences in "
                     "chunks of at most 64 rows (one label() call each), in this process on one ONNX Runtime "
                     "thread; the batch budget is LabelOptions.batch_size (a label job's `batch_size`), the most "
                     "inputs per ONNX Runtime run.", "",
                     *label_section(points_l, out), ""]
        done.append("label")
    load = (load_before, os.getloadavg()[0])
    notes = ["## Notes", "",
             "- Bends are computed from the numbers above: for latency against length, the inner point where the "
             "log-log slope changes most; for throughput, the first point that no later point beats by more than "
             f"{SATURATION:.0%}; for memory, the inner point where the marginal MB per model changes most. The "
             "sentence after each table is chosen among prepared explanations by conditions on this run's numbers "
             "(how busy the micro-batcher's inference workers were, the batches' fill against SSA_MAX_BATCH_SIZE, the "
             "API's CPU against the cores, the slopes and ratios themselves); the mechanisms named are those of the "
             "service's code (SSA_INFERENCE_WORKERS threads each running one micro-batch at a time, each "
             "length-sorted and cut into runs of at most SSA_BUCKET_SIZE inputs).",
             "- \"Inputs per micro-batch\" and \"inference workers busy\" (the share of the inference workers' "
             "time spent running batches: tokenization, model runs, rendering the responses) come from the "
             "service's own /metrics (ssa_batch_size, ssa_inference_seconds) over each point; \"API CPU\" from "
             "/proc over the same time.",
             ""]
    write_results(args.out, "\n".join([*header(args, model_dir, load, sizes, done, settings), *sections, *notes]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
