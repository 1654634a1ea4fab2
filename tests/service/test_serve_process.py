"""`ssa serve --model DIR` as a real process: it serves, and the API process never imports torch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# Runs `ssa serve ...` (argv after --) and, at exit, writes which heavy modules the process had imported.
LAUNCHER = """
import atexit, json, sys
report = sys.argv[1]
def dump():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "safetensors"))
    open(report, "w").write(json.dumps({"heavy": heavy, "ort": "onnxruntime" in sys.modules}))
atexit.register(dump)
sys.argv = ["ssa"] + sys.argv[3:]
from ssa_core.cli.main import main
sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def test_ssa_serve_runs_without_torch(tmp_path: Path, tiny_model_dir: Path) -> None:
    port, report = free_port(), tmp_path / "modules.json"
    env = {**os.environ, "SSA_HOME": str(tmp_path / "home"), "SSA_BOOTSTRAP": "false",
           "SSA_REDIS_URL": "redis://127.0.0.1:6379/15"}
    command = [sys.executable, "-c", LAUNCHER, str(report), "--", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--model", str(tiny_model_dir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(url, process)
        predicted = httpx.post(f"{url}/predict", json={"inputs": ["a fine film", "dull"]}, timeout=30)
        listed = httpx.get(f"{url}/models", timeout=30).json()
        maps = Path(f"/proc/{process.pid}/maps").read_text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert ready["model_id"] == "tiny-hybrid"
    assert predicted.status_code == 200 and len(predicted.json()["predictions"]) == 2
    assert listed["active"] == "tiny-hybrid"
    assert "libtorch" not in maps
    modules = json.loads(report.read_text())
    assert modules == {"heavy": [], "ort": True}
