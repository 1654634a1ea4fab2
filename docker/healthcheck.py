"""Container health checks (Docker HEALTHCHECK and compose `healthcheck`).

    python healthcheck.py http URL        healthy when URL answers 2xx (API: /healthz, Flower: /healthcheck)
    python healthcheck.py celery APP      healthy when a Celery worker on this host answers a ping
                                          (APP like worker.celery_app:app)

Exit status 0 is healthy and 1 unhealthy; the reason goes to stderr, where `docker inspect` shows it.
Standard library only, except that the celery check imports the Celery app it is given.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import urllib.error
import urllib.request
from typing import Any


def check_http(url: str, timeout: float) -> str | None:
    """Return None when `url` answers with a 2xx status, else the reason it is unhealthy."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} unreachable: {exc}"
    return None if 200 <= status < 300 else f"{url} answered HTTP {status}"


def load_app(spec: str) -> Any:
    """Import `module:attribute` and return the attribute (a Celery app)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"app must look like 'module:attribute', got {spec!r}")
    return getattr(importlib.import_module(module_name), attribute)


def local_nodes(replies: list[dict[str, Any]], host: str) -> list[str]:
    """Node names (`name@host`) among ping `replies` that run on `host`."""
    return [node for reply in replies for node in reply if node.partition("@")[2] == host]


def check_celery(spec: str, timeout: float) -> str | None:
    """Return None when a worker of this host answers a ping within `timeout`, else the reason."""
    host = socket.gethostname()
    try:
        replies = load_app(spec).control.ping(timeout=timeout)
    except Exception as exc:  # broker down, bad app path: both mean unhealthy
        return f"ping failed: {type(exc).__name__}: {exc}"
    if local_nodes(replies, host):
        return None
    others = sorted(node for reply in replies for node in reply)
    return f"no Celery worker on {host} answered a ping within {timeout:g}s (answered: {others or 'none'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["http", "celery"])
    parser.add_argument("target", help="URL for http, module:attribute of the Celery app for celery")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    args = parser.parse_args(argv)
    check = check_http if args.kind == "http" else check_celery
    problem = check(args.target, args.timeout)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
