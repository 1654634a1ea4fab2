"""`python -m worker [options]`: the same as `ssa worker [options]`."""

from __future__ import annotations

import argparse
import sys

from worker.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["worker", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
