"""Retake named entries of the OpenAPI snapshot (tests/service/fixtures/openapi-before.json) from the current app,
deliberately, when a change to them is intended; name them in tests/service/test_openapi_snapshot.py's docstring.

    python scripts/retake_openapi.py --schema ModelOut --operation "post /predict" ..."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from service.app import create_app
from service.settings import Settings

SNAPSHOT = Path(__file__).resolve().parents[1] / "tests" / "service" / "fixtures" / "openapi-before.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schema", action="append", default=[], help="a components.schemas name")
    parser.add_argument("--operation", action="append", default=[], help='"METHOD PATH", e.g. "post /predict"')
    args = parser.parse_args()
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as home:
        now = json.loads(json.dumps(create_app(Settings(home=Path(home), bootstrap=False)).openapi()))
    for name in args.schema:
        snapshot["components"]["schemas"][name] = now["components"]["schemas"][name]
    for operation in args.operation:
        method, path = operation.split(maxsplit=1)
        snapshot["paths"][path][method.lower()] = now["paths"][path][method.lower()]
    SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
