"""Fuzzing the upload parsers (hypothesis): arbitrary or mutated CSV/TSV/JSONL/Parquet bytes either parse into rows
or fail with a DatasetError whose problems name a row (1-based, within the file) or none, never another exception;
and the on-disk reader the API uses (load_dataset_file) agrees with the in-memory one (load_dataset_bytes) exactly.

The seed corpus (tests/fuzz_corpus/uploads/) holds tricky files replayed on every run; hypothesis adds mutations of
them and arbitrary bytes, bounded (SSA_FUZZ_EXAMPLES, default 150 per test) to stay well under a minute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssa_core.data.datasets import Dataset, DatasetColumns, DatasetError, load_dataset_bytes, load_dataset_file

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus" / "uploads"
SEEDS = sorted(CORPUS.iterdir())
EXAMPLES = int(os.environ.get("SSA_FUZZ_EXAMPLES", "150"))
FORMATS = ("csv", "tsv", "jsonl", "parquet")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
Outcome = tuple[str, object]


def outcome_of(load: object, *args: object, **kw: object) -> Outcome:
    """What loading gives: the dataset's rows, or the problems; any other exception propagates (the test fails)."""
    try:
        dataset = load(*args, **kw)  # type: ignore[operator]
    except DatasetError as exc:
        return "error", [(p.row, p.column, p.message) for p in exc.problems]
    assert isinstance(dataset, Dataset)
    return "rows", [(e.row, e.text, e.text_pair, e.label) for e in dataset.examples]


def check(data: bytes, fmt: str, tmp: Path, require_labels: bool = True) -> None:
    name = f"upload.{fmt}"
    columns = DatasetColumns()
    in_memory = outcome_of(load_dataset_bytes, data, name, columns=columns, require_labels=require_labels)
    path = tmp / f"staged-{fmt}"
    path.write_bytes(data)
    on_disk = outcome_of(load_dataset_file, path, name, columns=columns, require_labels=require_labels)
    assert on_disk == in_memory
    lines = data.count(b"\n") + data.count(b"\r") + 1
    if in_memory[0] == "error":
        problems = in_memory[1]
        assert problems, "a DatasetError names at least one problem"
        for row, column, message in problems:  # type: ignore[attr-defined]
            assert row is None or 1 <= row <= max(lines, 1), (row, lines)
            assert column is None or isinstance(column, str)
            assert message and str(tmp) not in message  # never a path of the server's
    else:
        assert in_memory[1], "parsed rows: at least one"


@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
def test_seed_corpus_parses_or_fails_cleanly(seed: Path, tmp_path: Path) -> None:
    fmt = seed.suffix.lstrip(".")
    for require_labels in (True, False):
        check(seed.read_bytes(), fmt, tmp_path, require_labels)


@FUZZ
@given(data=st.binary(max_size=400), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes, fmt: str, tmp_path: Path) -> None:
    check(data, fmt, tmp_path)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    """A seed file with a few bytes replaced, inserted or deleted (structure-aware enough to reach row checks)."""
    seed = draw(st.sampled_from([s for s in SEEDS if s.suffix != ".parquet"]))
    data = bytearray(seed.read_bytes())
    tricky = st.sampled_from([b",", b"\t", b'"', b"\n", b"\r", b"{", b"}", b"[", b":", b"\\", b"\x00", b"\xff",
                              b"\xcc\x81", b"\xef\xbb\xbf", b" ", b"label", b"text"])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            data[at:at] = draw(tricky)
        elif choice == 1 and data:
            del data[min(at, len(data) - 1)]
        else:
            data[at:at + 1] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data), seed.suffix.lstrip(".")


@FUZZ
@given(case=mutated())
def test_mutated_corpus_files_parse_or_fail_cleanly(case: tuple[bytes, str], tmp_path: Path) -> None:
    check(*case, tmp_path)


@FUZZ
@given(rows=st.lists(st.tuples(st.text(max_size=30), st.sampled_from(["pos", "neg", "", "1", "-0.5"])),
                     min_size=1, max_size=12),
       fmt=st.sampled_from(("csv", "tsv", "jsonl")))
def test_generated_rows_round_trip_or_fail_cleanly(rows: list[tuple[str, str]], fmt: str, tmp_path: Path) -> None:
    import csv
    import io
    import json

    if fmt == "jsonl":
        data = "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows).encode()
    else:
        out = io.StringIO()
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t",
                            quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
        data = out.getvalue().encode("utf-8", errors="surrogatepass")
    check(data, fmt, tmp_path)
