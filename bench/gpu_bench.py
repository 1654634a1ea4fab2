"""The GPU path, measured in one run of a few minutes (issue 14, point 3):

    python bench/gpu_bench.py [--dry-run] [--out bench/results/gpu.md]

1. training with bf16 autocast on CUDA: a hybrid iteration's examples/s against a plain fine-tuning (baseline) epoch on
   the same GPU and batch size (plus the hybrid iteration with autocast off, for what bf16 buys);
2. packed probing sequences/s against one forward pass per masked copy (target >= 20x);
3. serving: model latency at batch 1 and throughput at batch 256 from the exported model: ONNX Runtime's CUDA provider
   with IO binding (fp32 and the fp16 variant, made by `ssa export --quantize fp16`'s code with its parity check)
   where that provider is usable, and the same network in torch on CUDA (eager, and CUDA-graph replay) always.

Every row names the path that produced it. Without CUDA (or with --dry-run) every arm runs on CPU at tiny sizes with a
1-layer cut of the encoder, so that CI checks the code paths; the table then says it is a dry run, not a measurement,
and goes to a temporary file unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.machine import quietness, write_results  # noqa: E402
from bench.probe_bench import masked_copies  # noqa: E402
from bench.serve_bench import benchmark_model, data_file, dev_texts  # noqa: E402
from bench.train_overhead import StageClock  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gpu.md"
# a hybrid iteration (training only) at most this many times a baseline epoch (as bench/results/training.md)
TRAIN_TARGET = 1.3
PROBE_TARGET = 20.0  # packed probing at least this many times the per-copy loop


@dataclass(frozen=True)
class Sizes:
    train_rows: int
    batch_size: int
    probe_sentences: int
    probe_copies: int
    loop_sentences: int
    serve_texts: int  # batch-1 latency is taken over this many texts
    serve_batch: int  # the throughput batch
    repeats: int


FULL = Sizes(train_rows=512, batch_size=32, probe_sentences=128, probe_copies=8, loop_sentences=32, serve_texts=200,
             serve_batch=256, repeats=5)
DRY = Sizes(train_rows=16, batch_size=8, probe_sentences=6, probe_copies=4, loop_sentences=6, serve_texts=6,
            serve_batch=8, repeats=2)


@dataclass
class Row:
    section: str
    arm: str
    path: str  # what produced the number: ORT CUDA provider + IO binding, torch CUDA eager / graph replay, or CPU
    batch: int
    value: float
    unit: str
    note: str = ""


@dataclass
class Setup:
    device: torch.device
    dry: bool
    sizes: Sizes
    encoder: str  # the torch encoder folder training and probing start from
    work: Path

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def best(self, fn: Callable[[], object], repeats: int | None = None) -> float:
        """Fastest of `repeats` timed calls (after the caller's warm-up), synchronized on CUDA."""
        times = []
        for _ in range(repeats or self.sizes.repeats):
            self.sync()
            started = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - started)
        return min(times)


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


def verdict(setup: Setup, met: bool) -> str:
    return "dry run, no verdict" if setup.dry else ("met" if met else "missed")


def encoder_name(folder: str) -> str:
    """The encoder's folder name and layer count, read from its config."""
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(folder).num_hidden_layers
    return f"the encoder {Path(folder).name} ({layers} transformer layer{'' if layers == 1 else 's'})"


def cut_encoder(out: Path, layers: int) -> str:
    """The default MiniLM with its first `layers` layers, saved with its tokenizer (the dry run's encoder)."""
    from transformers import AutoModel, AutoTokenizer

    from ssa_core.config import default_base_model

    if not (out / "config.json").is_file():
        base = default_base_model()
        AutoModel.from_pretrained(base, num_hidden_layers=layers).save_pretrained(out)
        AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return str(out)


# ---- 1. training -----------------------------------------------------------------------------------------
def make_trainer(setup: Setup, method: str, rows: int) -> tuple[Any, list[Any]]:
    from ssa_core.config import ModelConfig, TrainConfig
    from ssa_core.data.datasets import head, load_dataset
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, structural_special_ids
    from ssa_core.train.pipeline import seed_everything
    from ssa_core.train.trainer import Trainer

    seed_everything(0)
    train = head(load_dataset(data_file("train")), rows)
    tokenizer = load_tokenizer(setup.encoder)
    cfg = ModelConfig(base_model=setup.encoder, method=method, labels=train.labels)  # type: ignore[arg-type]
    model = build_model(cfg, structural_special_ids(tokenizer))
    trainer = Trainer(model, TrainConfig(iterations=2, batch_size=setup.sizes.batch_size), tokenizer.mask_token_id,
                      tokenizer.pad_token_id, setup.device)
    return trainer, encode_examples(tokenizer, train.examples, 128)


def timed_iteration(setup: Setup, method: str, bf16: bool) -> tuple[float, float, int]:
    """(training seconds, probing seconds, examples trained) of the second iteration of a 2-iteration run."""
    trainer, encoded = make_trainer(setup, method, setup.sizes.train_rows)
    trainer.bf16 = bf16
    clock = StageClock()
    trainer.callback = clock
    trainer.fit(encoded, encoded[:32])
    clock.on_progress(type("P", (), {"iteration": -1, "stage": "end"})())
    return clock.spans[(1, "training")], clock.spans.get((1, "probing"), 0.0), len(encoded)


def training_rows(setup: Setup) -> tuple[list[Row], list[str]]:
    from ssa_core.train.trainer import bf16_autocast_usable

    # On CUDA, bf16 where the GPU supports it (as training runs); in the dry run, CPU bf16 autocast, so that the
    # autocast code path runs.
    bf16 = bf16_autocast_usable(setup.device) or setup.dry
    where = ("CPU (dry run)" if setup.device.type == "cpu" else "torch CUDA eager") + (
        ", bf16 autocast" if bf16 else ", fp32")
    if setup.device.type == "cuda":  # warm-up: kernels, allocator caches
        timed_iteration(setup, "baseline", bf16)
    base, _, n = timed_iteration(setup, "baseline", bf16)
    hybrid, probing, _ = timed_iteration(setup, "hybrid", bf16)
    hybrid_fp32, _, _ = timed_iteration(setup, "hybrid", False)
    b = setup.sizes.batch_size
    fp32_where = where.rsplit(",", 1)[0] + ", fp32"
    rows = [
        Row("training", "plain fine-tuning epoch (baseline method)", where, b, n / base, "examples/s"),
        Row("training", "hybrid iteration, training only", where, b, n / hybrid, "examples/s"),
        Row("training", "hybrid iteration, probing pass (reported apart)", fp32_where, 0,
            n / probing if probing else 0.0, "examples/s", "packed eval batches (autocast wraps training steps)"),
        Row("training", "hybrid iteration, training only, autocast off", fp32_where, b, n / hybrid_fp32,
            "examples/s"),
    ]
    ratio = hybrid / base
    lines = [f"- training: a hybrid iteration (training only) takes {ratio:.2f}x a plain fine-tuning epoch "
             f"({n} examples, batch {b}; target <= {TRAIN_TARGET}x: {verdict(setup, ratio <= TRAIN_TARGET)}); "
             f"with probing {(hybrid + probing) / base:.2f}x; {'bf16 autocast' if bf16 else 'fp32'} vs autocast off: "
             f"{hybrid_fp32 / hybrid:.2f}x the examples/s"]
    return rows, lines


# ---- 2. probing ------------------------------------------------------------------------------------------
def probing_rows(setup: Setup) -> tuple[list[Row], list[str]]:
    from ssa_core.config import ModelConfig
    from ssa_core.data.datasets import head, load_dataset
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, pad_batch, structural_special_ids
    from ssa_core.train.probing import packed_outputs

    s = setup.sizes
    tokenizer = load_tokenizer(setup.encoder)
    dataset = head(load_dataset(data_file("dev")), s.probe_sentences)
    model = build_model(ModelConfig(base_model=setup.encoder, labels=dataset.labels),
                        structural_special_ids(tokenizer)).to(setup.device).eval()
    encoded = encode_examples(tokenizer, dataset.examples, 128)
    pad, device = tokenizer.pad_token_id, setup.device

    def packed() -> None:  # sample masks + pack + run: what Prober does
        packed_outputs(model, masked_copies(encoded, s.probe_copies, tokenizer.mask_token_id, 0), pad, 16384, device)

    fixed = masked_copies(encoded, s.probe_copies, tokenizer.mask_token_id, 0)
    loop_n = min(s.loop_sentences, len(encoded)) * s.probe_copies

    @torch.inference_mode()
    def loop() -> None:  # one forward pass per masked copy
        for i in range(loop_n):
            batch = pad_batch([fixed.ids[i]], [fixed.types[i]] if fixed.types else None, pad)
            model(**{k: v.to(device) for k, v in batch.items()})

    packed()
    loop()
    n = len(fixed.ids)
    t_packed = setup.best(packed)
    t_loop = setup.best(loop, repeats=1) * (n / loop_n)
    where = "CPU (dry run)" if device.type == "cpu" else "torch CUDA eager, fp32"
    rows = [Row("probing", "one forward pass per masked copy", where, 1, n / t_loop, "sequences/s",
                f"timed on {loop_n} copies, scaled"),
            Row("probing", "packed probing (sample + pack + run)", where, 0, n / t_packed, "sequences/s",
                "token budget 16384 per batch")]
    ratio = t_loop / t_packed
    lines = [f"- probing: packed probing runs {ratio:.1f}x the sequences/s of one forward pass per copy "
             f"({len(encoded)} sentences x {s.probe_copies} copies; target >= {PROBE_TARGET:.0f}x: "
             f"{verdict(setup, ratio >= PROBE_TARGET)})"]
    return rows, lines


# ---- 3. serving ------------------------------------------------------------------------------------------
def serving_model(setup: Setup) -> Path:
    """The measured model folder: on GPU serve_bench's default (6-layer MiniLM, hybrid, 500 rows, 1 iteration);
    in the dry run a hybrid model on the cut encoder trained on a few rows."""
    if not setup.dry:
        return benchmark_model(None, setup.work)
    from ssa_core.config import ModelConfig, TrainConfig
    from ssa_core.data.datasets import head, load_dataset, stratified_split
    from ssa_core.train.pipeline import train_model

    out = setup.work / "dry-model"
    if not (out / "model.onnx").is_file():
        data = head(load_dataset(data_file("train")), 32)
        train, dev = stratified_split(data, dev_fraction=0.25, seed=0)
        cfg = ModelConfig(base_model=setup.encoder, method="hybrid", max_length=128, labels=data.labels)
        train_model(train, dev, cfg, TrainConfig(iterations=1, batch_size=16, explain_sentences=0), out,
                    model_id="gpu-dry", device="cpu")
    return out


def fp16_copy(model_dir: Path, work: Path, texts: list[str]) -> tuple[Path | None, str]:
    """A copy of the folder with the fp16 variant (ssa_core.export.quantize.add_fp16_variant, as `ssa export --quantize
    fp16` makes it); None and the refusal when the parity check refused it."""
    from ssa_core.export.quantize import DEFAULT_FP16_MAX_SCORE_DIFF, QuantizationRefused, add_fp16_variant

    out = work / f"{model_dir.name}-with-fp16"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns("model.safetensors", ".checkpoints", "*.int8.onnx"))
    try:
        report = add_fp16_variant(out, texts)
    except QuantizationRefused as exc:
        return None, f"- fp16 variant refused by its parity check: {exc}"
    variant = json.loads((out / "ssa.json").read_text())["variants"]["fp16"]
    return out, (f"- fp16 variant parity check on {report.inputs} dev sentences, run on {variant['checked_on']}: "
                 f"label agreement {report.agreement:.2%} (required {variant['min_agreement']:.1%}), the predicted "
                 f"class's probability moved by at most {report.score_max_abs_diff:.2e} "
                 f"(allowed {DEFAULT_FP16_MAX_SCORE_DIFF:g}): kept")


def latency_and_throughput(setup: Setup, run: Callable[[Any], object], singles: Sequence[Any], batch: Any
                           ) -> tuple[float, float]:
    """(p50 ms of one call at batch 1 over `singles`, inputs/s of one call on `batch`), after a warm-up."""
    for item in singles[:3]:
        run(item)
    run(batch)
    latencies = []
    for item in singles:
        setup.sync()
        started = time.perf_counter()
        run(item)
        setup.sync()
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000, setup.sizes.serve_batch / setup.best(lambda: run(batch))


def ort_rows(setup: Setup, model_dir: Path, fp16_dir: Path | None, texts: list[str]) -> list[Row]:
    """The runtime's Predictor.run (one padded batch through the session, outputs in NumPy): on the CUDA provider
    with IO binding where usable; in the dry run on the CPU provider, plainly and through the IO-binding function."""
    from ssa_core.runtime.predictor import CUDA, Predictor, bound_run, cuda_usable

    rows: list[Row] = []
    s = setup.sizes
    if setup.dry:
        providers = ["cpu"]
    elif cuda_usable():
        providers = ["cuda"]
    else:
        return rows
    variants = [("fp32", model_dir)] + ([("fp16", fp16_dir)] if fp16_dir is not None else [])
    for provider in providers:
        for variant, folder in variants:
            predictor = Predictor.load(folder, provider=provider, variant=variant)  # type: ignore[arg-type]
            if predictor.provider == CUDA and predictor.run_session is not bound_run:
                raise RuntimeError("the CUDA provider should run with IO binding")
            runs = [("", predictor.run_session)]
            if setup.dry:  # the IO-binding function on CPU, so that its code runs in CI
                runs.append((" + IO binding", bound_run))
            encodings = predictor.encode(texts)
            singles = [[e] for e in encodings[: s.serve_texts]]
            batch = (encodings * (s.serve_batch // len(encodings) + 1))[: s.serve_batch]
            for label, runner in runs:
                predictor.run_session = runner
                where = (f"ORT {predictor.provider}{label}" if predictor.provider != CUDA
                         else "ORT CUDAExecutionProvider + IO binding")
                p50, per_s = latency_and_throughput(setup, predictor.run, singles, batch)
                rows += [Row("serving", f"model latency, {variant}", where, 1, p50, "ms p50"),
                         Row("serving", f"model throughput, {variant}", where, s.serve_batch, per_s, "texts/s")]
    return rows


class Outputs(torch.nn.Module):
    """The exported graph's three outputs from the torch model (as ssa_core.export.onnx traces it)."""

    def __init__(self, model: torch.nn.Module, with_types: bool) -> None:
        super().__init__()
        self.model, self.with_types = model, with_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(input_ids, attention_mask, token_type_ids if self.with_types else None)
        return out.logits, out.importance, out.attention


class Eager:
    """The inputs to the device, one forward pass, the outputs back as NumPy."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        self.net, self.device = net, device

    @torch.inference_mode()
    def __call__(self, inputs: dict[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
        out = self.net(**{k: v.to(self.device, non_blocking=True) for k, v in inputs.items()})
        return tuple(t.float().cpu().numpy() for t in out)


class Replay:
    """One static input shape: on CUDA the model's forward captured once as a CUDA graph, each call copies its inputs
    into the static buffers and replays it; on CPU (dry run) the same buffers run the model eagerly, as a stand-in."""

    def __init__(self, net: torch.nn.Module, example: dict[str, torch.Tensor], device: torch.device) -> None:
        self.net, self.device = net, device
        self.static = {k: v.to(device).clone() for k, v in example.items()}
        self.graph: torch.cuda.CUDAGraph | None = None
        if device.type == "cuda":
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(3):
                    net(**self.static)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), torch.inference_mode():
                self.out = net(**self.static)

    @torch.inference_mode()
    def __call__(self, inputs: dict[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
        for name, value in inputs.items():
            self.static[name].copy_(value, non_blocking=True)
        if self.graph is None:
            out = self.net(**self.static)
        else:
            self.graph.replay()
            out = self.out
        return tuple(t.float().cpu().numpy() for t in out)


def padded(encodings: Sequence[Any], length: int, pad: int) -> dict[str, torch.Tensor]:
    ids = torch.full((len(encodings), length), pad, dtype=torch.long)
    mask = torch.zeros((len(encodings), length), dtype=torch.long)
    types = torch.zeros((len(encodings), length), dtype=torch.long)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        mask[row, : len(e.ids)] = 1
        types[row, : len(e.ids)] = torch.tensor(e.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def torch_rows(setup: Setup, model_dir: Path, texts: list[str], failures: list[str]) -> list[Row]:
    """The same network (the folder's weights, the exported graph's outputs) in torch: eager, and CUDA-graph replay
    at one static shape per arm (batch 1 padded to the longest of the texts; the batch padded to its longest)."""
    from ssa_core.export.folder import load_trained
    from ssa_core.runtime.predictor import Predictor

    s = setup.sizes
    model, _, meta = load_trained(model_dir)
    predictor = Predictor.load(model_dir, provider="cpu")  # its tokenizer, as the service encodes
    encodings = predictor.encode(texts)
    batch_enc = (encodings * (s.serve_batch // len(encodings) + 1))[: s.serve_batch]
    longest = max(len(e.ids) for e in encodings)
    singles = [padded([e], longest, predictor.pad_id) for e in encodings[: s.serve_texts]]
    batch = padded(batch_enc, longest, predictor.pad_id)
    rows: list[Row] = []
    for variant, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        device = setup.device
        net = Outputs(model.to(device=device, dtype=dtype).eval(), bool(meta.get("pair")))
        eager = Eager(net, device)

        base = "CPU (dry run)" if device.type == "cpu" else "torch CUDA"
        p50, per_s = latency_and_throughput(setup, eager, singles, batch)
        rows += [Row("serving", f"model latency, {variant}", f"{base} eager", 1, p50, "ms p50",
                     f"padded to {longest}"),
                 Row("serving", f"model throughput, {variant}", f"{base} eager", s.serve_batch, per_s, "texts/s",
                     f"padded to {longest}")]
        replay = "CPU static buffers, stand-in for CUDA graph replay (dry run)" if device.type == "cpu" else \
            "torch CUDA graph replay"
        try:
            one, many = Replay(net, singles[0], device), Replay(net, batch, device)
            p50, _ = latency_and_throughput(setup, one, singles, singles[0])
            _, per_s = latency_and_throughput(setup, many, singles[:1], batch)
        except Exception as exc:  # a capture that fails leaves the other rows standing
            failures.append(f"- {replay}, {variant}: FAILED: {first_line(exc)}")
        else:
            rows += [Row("serving", f"model latency, {variant}", replay, 1, p50, "ms p50", f"padded to {longest}"),
                     Row("serving", f"model throughput, {variant}", replay, s.serve_batch, per_s, "texts/s",
                         f"padded to {longest}")]
        model = model.float()
    return rows


def serving(setup: Setup) -> tuple[list[Row], list[str]]:
    from ssa_core.runtime.predictor import cuda_usable

    model_dir = serving_model(setup)
    texts = dev_texts(max(setup.sizes.serve_texts, min(setup.sizes.serve_batch, 256)))
    check = dev_texts(64 if setup.dry else 1000)
    fp16_dir, fp16_line = fp16_copy(model_dir, setup.work, check)
    failures: list[str] = []
    try:
        rows = ort_rows(setup, model_dir, fp16_dir, texts)
    except Exception as exc:
        rows = []
        failures.append(f"- ONNX Runtime serving rows: FAILED: {first_line(exc)}")
    rows += torch_rows(setup, model_dir, texts, failures)
    meta = json.loads((model_dir / "ssa.json").read_text())
    lines = [f"- serving model: `{meta['model_id']}` ({meta['method']}, max_length {meta['max_length']}); "
             f"ONNX Runtime CUDA provider usable: {cuda_usable()}" +
             ("" if setup.dry or cuda_usable() else " (so the serving rows come from torch on CUDA only)"),
             fp16_line, *failures]
    return rows, lines


# ---- report ----------------------------------------------------------------------------------------------
def machine_lines(setup: Setup, argv: Sequence[str], load_before: float, load_after: float) -> list[str]:
    import onnxruntime as ort

    gpu = (f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}" if setup.device.type == "cuda"
           else "none used")
    return [
        f"- machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPU cores; GPU: {gpu}; torch "
        f"{torch.__version__}, onnxruntime {ort.__version__} (providers: {', '.join(ort.get_available_providers())})",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{' '.join(['python bench/gpu_bench.py', *argv])}`",
        f"- load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} ({quietness(load_before)})",
    ]


def render(setup: Setup, rows: list[Row], summary: list[str], machine: list[str]) -> str:
    if setup.dry:
        why = ("no GPU lent (torch.cuda.is_available() is False)" if not torch.cuda.is_available()
               else "--dry-run given")
        title = [f"# GPU path: DRY RUN ON CPU, NOT A MEASUREMENT; {why}", "",
                 f"Every arm ran on CPU at tiny sizes with {encoder_name(setup.encoder)}, to check that the code paths "
                 "work; the numbers and ratios below say nothing about a GPU. On a machine with CUDA the script "
                 "measures instead."]
    else:
        title = ["# GPU path", "", f"Measured on {torch.cuda.get_device_name(0)} with {encoder_name(setup.encoder)}; "
                 "each row names the path that produced it."]
    lines = [*title, "", *machine,
             f"- sizes: {setup.sizes.train_rows} training rows, batch {setup.sizes.batch_size}; "
             f"{setup.sizes.probe_sentences} sentences x {setup.sizes.probe_copies} masked copies; "
             f"batch-1 latency over {setup.sizes.serve_texts} texts, throughput at batch {setup.sizes.serve_batch}; "
             f"best of {setup.sizes.repeats}", "",
             "| section | arm | path | batch | value | unit | note |", "|---|---|---|---:|---:|---|---|"]
    for r in rows:
        batch = "packed" if r.batch == 0 else str(r.batch)
        lines.append(f"| {r.section} | {r.arm} | {r.path} | {batch} | {r.value:.1f} | {r.unit} | {r.note} |")
    lines += ["", "## Ratios against the targets" + (" (dry run: not evidence)" if setup.dry else ""), "", *summary,
              ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="run every arm on CPU at tiny sizes (automatic "
                        "without CUDA)")
    parser.add_argument("--out", type=Path, help=f"results file (default: {RESULTS.relative_to(ROOT)} on a GPU, a "
                        "temporary file in a dry run)")
    parser.add_argument("--work", type=Path, help="cache of the trained models (default: var/bench on a GPU, a "
                        "temporary folder in a dry run)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    dry = args.dry_run or not torch.cuda.is_available()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ssa-gpu-bench-") as scratch:
        work = args.work or (Path(scratch) if dry else ROOT / "var" / "bench")
        work.mkdir(parents=True, exist_ok=True)
        if dry:
            setup = Setup(torch.device("cpu"), True, DRY, cut_encoder(work / "minilm-cut", 1), work)
        else:
            from ssa_core.config import default_base_model

            setup = Setup(torch.device("cuda"), False, FULL, default_base_model(), work)
        rows: list[Row] = []
        summary: list[str] = []
        for section in (training_rows, probing_rows, serving):
            try:
                section_rows, section_lines = section(setup)
            except Exception as exc:  # one section failing on a lent GPU leaves the others' numbers standing
                summary.append(f"- {section.__name__}: FAILED: {first_line(exc)}")
                continue
            rows += section_rows
            summary += section_lines
        text = render(setup, rows, summary, machine_lines(setup, argv, load_before, os.getloadavg()[0]))
        out = args.out or (Path(tempfile.gettempdir()) / "ssa-gpu-bench-dry-run.md" if dry else RESULTS)
        write_results(out, text)
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
