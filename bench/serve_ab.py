"""Serving A/B: the HTTP service of two commits, back to back on the same host, with serve_bench's wrk harness.

    python bench/serve_ab.py --old 249628d --new HEAD [--model DIR] [--repeats 3] [--seconds 10] [--wait-quiet 900]
        -> bench/results/serving-ab.md

Each commit is checked out into a git worktree under --work and served by its own `ssa serve` (PYTHONPATH and
working directory set to that checkout), both on the same model folder (default: the first-start model, trained
into --work by the checkout this script runs from). Every round runs each client count against the old and then the
new server (the other way round every second round), so a change of the machine's load falls on both alike; every
round is reported, with the mean.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import QUIET_LOAD, cpu_model, quietness, wait_until_quiet, write_results  # noqa: E402
from bench.serve_bench import Row, Server, dev_texts, first_start_model, start_server, wrk_arms  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "serving-ab.md"
CLIENTS = (1, 8, 32, 64)


def checkout(rev: str, work: Path) -> tuple[Path, str]:
    """A detached worktree of `rev` under `work` (reused when it exists); returns it and the full commit id."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    tree = work / f"ab-{commit[:12]}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True)
    return tree, commit


def table(rows: dict[tuple[str, int], list[Row]], names: tuple[str, str]) -> list[str]:
    old, new = names
    lines = ["| clients | old req/s (each round) | new req/s (each round) | new / old throughput | old p50 ms | "
             "new p50 ms | new / old p50 |", "|---|---|---|---|---|---|---|"]
    for clients in CLIENTS:
        a, b = rows[(old, clients)], rows[(new, clients)]
        ta, tb = statistics.mean(r.throughput for r in a), statistics.mean(r.throughput for r in b)
        pa, pb = statistics.mean(r.pct(0.5) for r in a), statistics.mean(r.pct(0.5) for r in b)
        each = [", ".join(f"{r.throughput:.1f}" for r in rs) for rs in (a, b)]
        lines.append(f"| {clients} | {ta:.1f} ({each[0]}) | {tb:.1f} ({each[1]}) | {tb / ta:.3f}× | {pa:.1f} | "
                     f"{pb:.1f} | {pb / pa:.3f}× |")
    return lines


def verdict(rows: dict[tuple[str, int], list[Row]], names: tuple[str, str], quiet: bool) -> list[str]:
    old, new = names
    worst = min(statistics.mean(r.throughput for r in rows[(new, c)]) /
                statistics.mean(r.throughput for r in rows[(old, c)]) for c in CLIENTS)
    p50 = max(statistics.mean(r.pct(0.5) for r in rows[(new, c)]) /
              statistics.mean(r.pct(0.5) for r in rows[(old, c)]) for c in CLIENTS)
    met = worst >= 0.97 and p50 <= 1.0
    lines = [f"Lowest new/old throughput over the client counts: **{worst:.3f}×**; highest new/old p50: "
             f"**{p50:.3f}×**. Target (at most 3 % less throughput and no higher p50): "
             f"{'met' if met else 'not met'}" + ("" if quiet else " — but the host was not quiet, so this is not "
                                                 "evidence either way") + "."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the commit before (any git revision)")
    parser.add_argument("--new", default="HEAD", help="the commit after (default: HEAD)")
    parser.add_argument("--model", type=Path, help="model folder (default: the first-start model, trained once)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk seconds per run")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help=f"first wait up to S seconds for the 1-minute load average to fall below {QUIET_LOAD}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = first_start_model(args.model, args.work)
    texts = dev_texts(args.texts)
    trees = {name: checkout(rev, args.work) for name, rev in (("old", args.old), ("new", args.new))}
    load_before = wait_until_quiet(args.wait_quiet)
    servers: dict[str, Server] = {}
    rows: dict[tuple[str, int], list[Row]] = {}
    try:
        for name, (tree, _) in trees.items():
            servers[name] = start_server(model_dir, {}, code=tree)
        arms = {name: wrk_arms(server, texts, args.work, f" {name}", seconds=args.seconds)
                for name, server in servers.items()}
        for round_ in range(args.repeats):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")  # ABBA: neither always goes first
            for index, clients in enumerate(CLIENTS):
                for name in order:
                    arm = arms[name][index]
                    seconds, latencies, done = arm.run()  # type: ignore[misc]
                    row = Row(arm.name, done, seconds, latencies)
                    rows.setdefault((name, clients), []).append(row)
                    print(f"  round {round_ + 1}: {name} {clients} clients: {row.throughput:.1f}/s "
                          f"p50 {row.pct(0.5):.1f} ms", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    load_after = os.getloadavg()[0]
    quiet = load_before < QUIET_LOAD
    old_commit, new_commit = trees["old"][1], trees["new"][1]
    lines = [
        "# Serving A/B: two commits back to back", "",
        f"- machine: {platform.node()}, {cpu_model()}, {os.cpu_count()} cores",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `python bench/serve_ab.py {' '.join(sys.argv[1:])}`",
        f"- old: `{old_commit[:12]}`, new: `{new_commit[:12]}` (each served from its own worktree by `ssa serve`)",
        f"- load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} ({quietness(load_before)})",
        f"- model: `{model_dir.name}`; inputs: the first {len(texts)} movie-sentiment dev sentences, one per "
        f"request (wrk, one thread, {args.seconds:g} s per run); {args.repeats} rounds, old and new back to back per "
        "client count, the order swapped every second round", "",
        *table(rows, ("old", "new")), "",
        *verdict(rows, ("old", "new"), quiet), "",
    ]
    write_results(args.out, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
