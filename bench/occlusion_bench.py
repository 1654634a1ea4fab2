"""Does the occlusion explainer starve plain predictions? `/predict` p50 under plain load, then under the same plain
load with occlusion requests sent alongside (the occlusion lane's bound decides how many run; the rest get 429).

    python bench/occlusion_bench.py [--model DIR] [--seconds 20] [--clients 4]   -> bench/results/occlusion.md

The model: a folder given with --model, else the serving benchmark's default (hybrid SSA on the 6-layer MiniLM,
trained here on 500 movie-sentiment rows for 1 iteration). Plain requests: one unique dev sentence each, in turn;
occlusion requests: `--occlusion-clients` clients sending one dev sentence each with "explain": "occlusion".
Target: plain p50 under the mixed load within 1.5× of its plain-load value.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_bench import dev_texts, start_server, train_default  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "occlusion.md"
TARGET = 1.5


@dataclass
class Phase:
    name: str
    plain: list[float] = field(default_factory=list)      # seconds per plain request
    occlusion: list[float] = field(default_factory=list)  # seconds per answered occlusion request
    refused: int = 0                                      # occlusion requests answered 429

    def p(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


async def drive(url: str, texts: list[str], seconds: float, clients: int, occlusion_clients: int,
                phase: Phase) -> None:
    import httpx

    deadline = time.perf_counter() + seconds
    cursor = iter(range(10**9))

    async def plain() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.perf_counter() < deadline:
                text = texts[next(cursor) % len(texts)]
                t0 = time.perf_counter()
                response = await http.post("/predict", json={"inputs": text})
                response.raise_for_status()
                phase.plain.append(time.perf_counter() - t0)

    async def occlusion() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.perf_counter() < deadline:
                text = texts[next(cursor) % len(texts)]
                t0 = time.perf_counter()
                response = await http.post("/predict", json={"inputs": text, "explain": "occlusion"})
                if response.status_code == 429:
                    phase.refused += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 10)
                    continue
                response.raise_for_status()
                phase.occlusion.append(time.perf_counter() - t0)

    await asyncio.gather(*(plain() for _ in range(clients)), *(occlusion() for _ in range(occlusion_clients)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model folder (default: train the serving benchmark's model)")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-cache", help="where the default model is kept")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4, help="plain-prediction clients")
    parser.add_argument("--occlusion-clients", type=int, default=2)
    args = parser.parse_args()
    model = args.model or args.work / "bench-minilm"
    if not (model / "model.onnx").is_file():
        train_default(model)
    load_before = os.getloadavg()
    texts = dev_texts(512)
    server = start_server(model, {"SSA_OCCLUSION_CONCURRENCY": "1"})
    try:
        asyncio.run(drive(server.url, texts[:64], 3.0, args.clients, 1, Phase("warm-up")))
        plain, mixed = Phase("plain load"), Phase("plain + occlusion")
        asyncio.run(drive(server.url, texts, args.seconds, args.clients, 0, plain))
        asyncio.run(drive(server.url, texts, args.seconds, args.clients, args.occlusion_clients, mixed))
    finally:
        server.stop()
    load_after = os.getloadavg()
    ratio = mixed.p(mixed.plain, 0.5) / plain.p(plain.plain, 0.5)
    verdict = "met" if ratio <= TARGET else "missed"
    quiet = load_before[0] < 1.0
    lines = [
        "# Occlusion explainer under load", "",
        f"- machine: {platform.node() or 'unknown'}, {platform.processor() or platform.machine()}, CPU only, "
        f"{os.cpu_count()} cores",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `python bench/occlusion_bench.py{' --model ' + str(args.model) if args.model else ''} "
        f"--seconds {args.seconds:g} --clients {args.clients} --occlusion-clients {args.occlusion_clients}`",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}"
        + ("" if quiet else " — the machine was not quiet, so this ratio is not evidence for the target"),
        f"- model: `{model.name}`; SSA_OCCLUSION_CONCURRENCY=1; {args.clients} plain clients, each phase "
        f"{args.seconds:g} s", "",
        "| phase | plain requests | plain p50 ms | plain p99 ms | occlusion answered | occlusion p50 ms | "
        "occlusion 429s |", "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in (plain, mixed):
        lines.append(f"| {phase.name} | {len(phase.plain)} | {phase.p(phase.plain, 0.5):.1f} | "
                     f"{phase.p(phase.plain, 0.99):.1f} | {len(phase.occlusion)} | "
                     f"{phase.p(phase.occlusion, 0.5):.1f} | {phase.refused} |")
    words = statistics.mean(len(t.split()) for t in texts)
    lines += ["", f"Plain p50 under the mixed load is **{ratio:.2f}×** its plain-load value (target ≤ {TARGET}×: "
              f"{verdict}). The dev sentences average {words:.1f} whitespace-separated words, so an occlusion "
              "request runs about that many extra copies of its input.", ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
