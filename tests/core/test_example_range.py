"""A label shard's input read only up to its range's end (ssa_core.data.datasets.load_example_range): the same examples
as the whole file's rows [start, end) in JSONL (blank lines too), CSV, TSV and Parquet, and a shard of the last rows
parses / converts only its own rows (JSONL lines before it are counted, Parquet row groups before it not read)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import ssa_core.data.formats as dataformats
from ssa_core.data.datasets import DatasetColumns, DatasetError, load_dataset, load_example_range

ROWS = [{"text": f"row {i} text, with a comma", "label": ["negative", "positive"][i % 2]} for i in range(250)]
COLUMNS = DatasetColumns("text", None, "label")


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        lines = [json.dumps(r) for r in rows]
        lines.insert(3, "")  # blank lines are no rows
        path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=50)
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, ["text", "label"], delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv", ".parquet"])
def test_a_range_equals_the_whole_files_rows(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"rows{suffix}", ROWS)
    whole = load_dataset(path, columns=COLUMNS).examples
    for start, end in [(0, 7), (45, 120), (240, 250), (0, 250)]:
        assert load_example_range(path, COLUMNS, "classification", True, start, end) == whole[start:end]
    with pytest.raises(DatasetError, match="rows 241-260"):
        load_example_range(path, COLUMNS, "classification", True, 240, 260)


def test_a_shard_of_the_last_rows_materializes_only_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    parse = dataformats._parse_json_line

    def counting_parse(problems: list[Any], number: int, line: str) -> Any:
        parsed.append(number)
        return parse(problems, number, line)

    monkeypatch.setattr(dataformats, "_parse_json_line", counting_parse)
    jsonl = write(tmp_path / "rows.jsonl", ROWS)
    assert len(load_example_range(jsonl, COLUMNS, "classification", True, 230, 250)) == 20
    assert len(parsed) == 20  # the 230 lines before the shard were counted, not parsed into rows

    converted: list[int] = []
    groups: list[int] = []
    arrow_rows, read_group = dataformats._arrow_rows, None

    def counting_rows(pa: Any, arrow: Any, names: list[str], before: int) -> Any:
        converted.append(arrow.num_rows)
        return arrow_rows(pa, arrow, names, before)

    import pyarrow.parquet as pq

    read_group = pq.ParquetFile.read_row_group

    def counting_group(self: Any, index: int, *args: Any, **kwargs: Any) -> Any:
        groups.append(index)
        return read_group(self, index, *args, **kwargs)

    monkeypatch.setattr(dataformats, "_arrow_rows", counting_rows)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting_group)
    parquet = write(tmp_path / "rows.parquet", ROWS)
    examples = load_example_range(parquet, COLUMNS, "classification", True, 230, 250)
    assert [e.row for e in examples] == list(range(231, 251))
    assert groups == [4] and converted == [20]  # 5 groups of 50 rows: only the last is read, 20 rows converted
