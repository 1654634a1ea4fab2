"""`ssa serve`: run the API with uvicorn (registered through the `ssa.commands` entry point)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ssa_core.runtime.modelmeta import SSA_FILE


def register(subparsers: Any) -> None:
    """Add the `serve` subcommand to the core CLI's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the inference API",
        description="Run the REST API. Settings come from SSA_* environment variables; the flags override them.")
    parser.add_argument("--host", default=None, help="interface to bind (default: SSA_HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default: SSA_PORT or 8000)")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR",
                        help="model folder to publish into the store and deploy at start "
                             "(default: SSA_MODEL, else the store's active model)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Build the settings (environment + flags) and run uvicorn until interrupted."""
    import uvicorn

    from service.apikey import with_stored_key
    from service.app import create_app
    from service.settings import Settings

    overrides = {name: value for name, value in (("host", args.host), ("port", args.port), ("model", args.model))
                 if value is not None}
    if args.model is not None and not (args.model / SSA_FILE).is_file():
        print(f"error: {args.model} is not a model folder (no {SSA_FILE})")
        return 2
    settings = with_stored_key(Settings(**overrides))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                proxy_headers=True)
    return 0
