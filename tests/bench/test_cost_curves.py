"""bench/cost_curves.py: one --quick run (2-layer model, tiny sizes, 2 s per HTTP point) writes the results file with
a table of numbers, a computed sentence and a PNG per curve; and the helpers that find the bends."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cost_curves import QUICK, loglog_bend, marginal_bend, saturation, text_of_length

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HTTP_CURVES = {"## 1.": "curve-length.png", "## 2.": "curve-concurrency.png"}
LOCAL_CURVES = {"## 3.": "curve-memory.png", "## 4.": "curve-label.png"}
NO_WRK = "wrk is not installed: the length and concurrency curves (HTTP load from wrk) are not measured"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def quick_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results file of one `--quick` run on the 2-layer test model, in a temporary folder."""
    work, out = tmp_path_factory.mktemp("curves-work"), tmp_path_factory.mktemp("curves-out")
    done = subprocess.run([sys.executable, "bench/cost_curves.py", "--quick", "--model", str(tiny_model_dir),
                           "--work", str(work), "--out", str(out / "cost-curves.md")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "cost-curves.md"


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def table_rows(part: str) -> list[list[str]]:
    """The data rows of the section's markdown table (header and separator left out)."""
    rows = [line for line in part.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def check_curve(text: str, heading: str, png: str, points: int, folder: Path) -> None:
    part = section(text, heading)
    rows = table_rows(part)
    assert len(rows) == points, part
    for row in rows:
        numbers = [float(cell.rstrip("%")) for cell in row if re.fullmatch(r"-?\d+(\.\d+)?%?", cell)]
        assert len(numbers) >= len(row) - 1, row  # every cell a number (memory's first row: no step yet)
        assert all(math.isfinite(n) for n in numbers), row
    assert f"]({png})" in part
    assert (folder / png).read_bytes()[:8] == PNG_MAGIC
    sentences = [line for line in part.splitlines() if line and not line.startswith(("|", "!", "#"))]
    assert any(re.search(r"bend|stops? rising|still rises?", s, re.IGNORECASE) for s in sentences), part


def test_quick_run_writes_the_local_curves(quick_run: Path) -> None:
    text = quick_run.read_text()
    for field in ("- date: ", "- machine: ", "load average", "- command: `python bench/cost_curves.py --quick"):
        assert field in text
    check_curve(text, "## 3.", "curve-memory.png", QUICK.models, quick_run.parent)
    check_curve(text, "## 4.", "curve-label.png", len(QUICK.budgets), quick_run.parent)
    assert "No bend" in text or "marginal cost changes most" in text


def test_quick_run_writes_the_http_curves(quick_run: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip(NO_WRK)
    text = quick_run.read_text()
    check_curve(text, "## 1.", "curve-length.png", len(QUICK.lengths), quick_run.parent)
    check_curve(text, "## 2.", "curve-concurrency.png", len(QUICK.clients), quick_run.parent)
    assert "ssa.json max_length 512" in text  # served from the copy whose inputs may be as long as the encoder allows
    found = re.search(r"differ from PyTorch's on the folder's weights by at most (\S+) \(logits\)", text)
    assert found is not None and float(found.group(1)) < 1e-4


def test_texts_are_cut_to_exact_token_counts(tiny_model_dir: Path) -> None:
    from bench.cost_curves import load_tokenizer, texts_of_length
    from tests.conftest import sentiment_dev_texts

    tokenizer = load_tokenizer(tiny_model_dir)
    sentences = sentiment_dev_texts(200)
    for tokens in (8, 33, 512):
        texts = texts_of_length(tokenizer, sentences, tokens, count=3)
        assert len(set(texts)) == 3
        assert [len(tokenizer.encode(t).ids) for t in texts] == [tokens] * 3
    with pytest.raises(ValueError, match="too short"):
        text_of_length(tokenizer, "a few words", 64)


def test_bends_are_found_from_the_numbers() -> None:
    # flat, then proportional: the slope changes most at the third point
    xs = [8, 16, 32, 64, 128]
    found = loglog_bend(xs, [10, 10.5, 11, 22, 44])
    assert found is not None and xs[found[0]] == 32 and found[1] < 0.1 and found[2] == pytest.approx(1.0)
    assert loglog_bend([1, 2], [1, 2]) is None
    assert saturation([100, 180, 300, 310, 305, 312]) == 2  # no later point beats 300 by more than 5 %
    assert saturation([1, 2, 3]) == 2  # still rising
    assert saturation([5, 4, 3]) == 0
    index, steps = marginal_bend([1, 2, 3, 4], [200, 280, 360, 600]) or (None, [])
    assert index == 2 and steps == [80, 80, 240]
