"""What this build of the service is: its package version and the versions of the runtime it serves with."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def package_version(name: str = "ssa-service") -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def build_info() -> dict[str, str]:
    """The service's version, and the Python and ONNX Runtime it runs on (as GET /info shows them)."""
    import onnxruntime

    return {"version": package_version(), "python": platform.python_version(),
            "onnxruntime": str(onnxruntime.__version__)}
