"""The label merge's Parquet writing must not leave a long-lived worker process much bigger than before it: issue 11
(3), where each worker's resident memory stood ~200 MB higher at the end of a 100 000-row label job. The shards were
flat; the rise was the merge (every record parsed again and turned into Arrow data a 2000-row group at a time), whose
freed memory the allocators kept. Measured in a fresh process, after a first small write has paid pyarrow's one-time
cost: before the fix this process stayed ~65 MB bigger (6000 rows), after it ~3 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from pathlib import Path
from ssa_core.labeling.files import release_free_memory, write_parquet
from ssa_core.labeling.records import LabelRecord, LabelSpan

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def records(n):
    for i in range(n):
        words = [f"word{i}-{k}" for k in range(40)]
        spans = [LabelSpan(text=w, start=k * 12, end=k * 12 + len(w), segment=0, attention=0.01 * k,
                           importance=0.5, probe=None) for k, w in enumerate(words)]
        yield LabelRecord(index=i, row=i + 1, text=" ".join(words), prediction="positive", score=0.6,
                          scores={"negative": 0.4, "positive": 0.6}, truncated=False, probed_words=0,
                          tokens=spans + spans[:20], words=spans)

out = Path(sys.argv[1])
write_parquet(records(300), out / "warm.parquet")  # pyarrow's import and first use: a one-time cost
release_free_memory()
before = rss_mb()
written = write_parquet(records(int(sys.argv[2])), out / "labels.parquet")
release_free_memory()
print(json.dumps({"before": before, "after": rss_mb(), "rows": written}))
"""


def test_the_merge_leaves_the_process_about_as_big_as_before(tmp_path: Path) -> None:
    if not Path("/proc/self/status").is_file():
        import pytest

        pytest.skip("needs /proc to read resident memory")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), "6000"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=True)
    memory = json.loads(done.stdout.strip().splitlines()[-1])
    assert memory["rows"] == 6000
    grown = memory["after"] - memory["before"]
    assert grown < 30, f"writing 6000 label records to Parquet left the process {grown:.0f} MB bigger"
