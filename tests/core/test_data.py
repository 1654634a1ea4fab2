"""ssa_core.data.datasets: loading, validation with row numbers, split checks, stratified splits (real files only)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ssa_core.data.datasets import (
    Dataset,
    DatasetColumns,
    DatasetError,
    Problem,
    check_splits,
    head,
    load_dataset,
    load_dataset_bytes,
    stratified_split,
)

SHARED_DATA = Path("/work/shared/data")


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, Any]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def problems_of(path: Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, **kwargs)
    return caught.value.problems


def where(problems: list[Problem]) -> list[tuple[int | None, str | None]]:
    return [(problem.row, problem.column) for problem in problems]


def make_dataset(labels: list[Any], *, pair: bool = False, task: str = "classification") -> Dataset:
    records = [
        {"text": f"text {i}", "label": label} | ({"text_pair": f"pair {i}"} if pair else {})
        for i, label in enumerate(labels)
    ]
    data = "".join(json.dumps(record) + "\n" for record in records).encode()
    return load_dataset_bytes(data, "made.jsonl", task=task)  # type: ignore[arg-type]


# --- formats --------------------------------------------------------------------------------------


def test_jsonl_single_texts_with_string_labels(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "good film", "label": "pos"}\n\n{"text": "dull", "label": "neg"}\n')
    ds = load_dataset(path)
    assert ds.task == "classification"
    assert ds.labels == ("neg", "pos")
    assert not ds.pair
    assert ds.columns == DatasetColumns("text", None, "label")
    assert [(e.example_id, e.row, e.text, e.label) for e in ds.examples] == [
        (0, 1, "good film", "pos"),
        (1, 3, "dull", "neg"),  # the blank line 2 is skipped but still counted
    ]
    assert ds.source == str(path)


def test_csv_quoting_bom_and_multiline_rows(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    content = '\ufefftext,label\n"one, two",a\n"first line\nsecond line",b\nplain,a\n'
    path.write_bytes(content.encode("utf-8"))
    ds = load_dataset(path)
    assert [e.text for e in ds.examples] == ["one, two", "first line\nsecond line", "plain"]
    assert [e.row for e in ds.examples] == [1, 2, 3]  # data rows, not lines; the header is no row
    assert ds.labels == ("a", "b")


def test_tsv_keeps_quotes_literally(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text('sentence1\tsentence2\tlabel\n"Quoted" start\tsecond, text\tyes\nx\ty\tno\n')
    ds = load_dataset(path)
    assert ds.pair and ds.columns == DatasetColumns("sentence1", "sentence2", "label")
    assert (ds.examples[0].text, ds.examples[0].text_pair) == ('"Quoted" start', "second, text")
    assert ds.labels == ("no", "yes")


def test_parquet(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "train.parquet", {"text": ["a", "b", "c"], "label": [1, 0, 1], "x": [1, 2, 3]}
    )
    ds = load_dataset(path)
    assert ds.labels == ("0", "1")
    assert [(e.row, e.text, e.label) for e in ds.examples] == [(1, "a", "1"), (2, "b", "0"), (3, "c", "1")]


def test_bytes_upload_matches_file(tmp_path: Path) -> None:
    path = tmp_path / "up.csv"
    path.write_text("text,label\nhello,x\nworld,y\n")
    from_file = load_dataset(path)
    from_bytes = load_dataset_bytes(path.read_bytes(), "UP.CSV")  # extension matching ignores case
    assert from_bytes.examples == from_file.examples
    assert from_bytes.source == "UP.CSV"


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"whatever")
    [problem] = problems_of(path)
    assert "unsupported file type" in problem.message and ".parquet" in problem.message


# --- columns --------------------------------------------------------------------------------------


def test_pairs_text_and_text_pair(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "q", "text_pair": "a", "label": "yes"}])
    ds = load_dataset(path)
    assert ds.pair and (ds.examples[0].text, ds.examples[0].text_pair) == ("q", "a")


def test_pairs_sentence1_sentence2(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet", {"sentence1": ["s1"], "sentence2": ["s2"], "label": ["entail"]}
    )
    ds = load_dataset(path)
    assert ds.columns == DatasetColumns("sentence1", "sentence2", "label")
    assert (ds.examples[0].text, ds.examples[0].text_pair) == ("s1", "s2")


def test_user_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "nli.csv"
    path.write_text("premise,hypothesis,gold,text\nP1,H1,e,ignored\nP2,H2,c,ignored\n")
    ds = load_dataset(path, columns=DatasetColumns(text="premise", text_pair="hypothesis", label="gold"))
    assert [(e.text, e.text_pair, e.label) for e in ds.examples] == [("P1", "H1", "e"), ("P2", "H2", "c")]
    single = load_dataset(path, columns=DatasetColumns(text="hypothesis", label="gold"))
    assert not single.pair and single.examples[0].text == "H1"


def test_missing_columns_name_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("body,label\nhello,a\n")
    [problem] = problems_of(path)
    assert problem.row is None and "no text column" in problem.message and "'body'" in problem.message
    [problem] = problems_of(path, columns=DatasetColumns(text="body", label="gold"))
    assert (problem.row, problem.column) == (None, "gold")
    assert "missing column" in problem.message


# --- labels ---------------------------------------------------------------------------------------


def test_integer_labels_sort_numerically(tmp_path: Path) -> None:
    records = [{"text": f"t{i}", "label": label} for i, label in enumerate([10, 2, 1, 2])]
    ds = load_dataset(write_jsonl(tmp_path / "i.jsonl", records))
    assert ds.task == "classification"
    assert ds.labels == ("1", "2", "10")
    assert [e.label for e in ds.examples] == ["10", "2", "1", "2"]
    csv_path = tmp_path / "i.csv"
    csv_path.write_text("text,label\na,10\nb,9\n")
    assert load_dataset(csv_path).labels == ("9", "10")


def test_float_labels_make_regression(tmp_path: Path) -> None:
    records = [{"text": "a", "label": 0.5}, {"text": "b", "label": 3}, {"text": "c", "label": 4.25}]
    ds = load_dataset(write_jsonl(tmp_path / "r.jsonl", records))
    assert ds.task == "regression" and ds.labels == ()
    assert [e.label for e in ds.examples] == [0.5, 3.0, 4.25]
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("text,label\na,1\nb,2.5\n")
    assert [e.label for e in load_dataset(csv_path).examples] == [1.0, 2.5]


def test_forced_task(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 2}])
    ds = load_dataset(path, task="regression")
    assert ds.task == "regression" and [e.label for e in ds.examples] == [1.0, 2.0]
    floats = write_jsonl(tmp_path / "g.jsonl", [{"text": "a", "label": 1.0}, {"text": "b", "label": 0.5}])
    [problem] = problems_of(floats, task="classification")
    assert (problem.row, problem.column) == (2, "label") and "expected a class name" in problem.message


# --- problems, each with its row ------------------------------------------------------------------


def test_every_jsonl_problem_is_collected_with_its_line(tmp_path: Path) -> None:
    lines = [
        '{"text": "fine", "label": "a"}',  # 1
        '{"text": "", "label": "a"}',  # 2 empty text
        '{"text": "   ", "label": "a"}',  # 3 whitespace-only
        '{"text": "no label"}',  # 4 missing label column
        "{not json",  # 5 invalid JSON
        '{"text": "x", "label": null}',  # 6 null label
        '{"text": "x", "label": true}',  # 7 wrong label type
        '["a list"]',  # 8 not an object
        '{"label": "a"}',  # 9 missing text column
        '{"text": 42, "label": "a"}',  # 10 text of the wrong type
        '{"text": "fine", "label": "b"}',  # 11
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    problems = problems_of(path)
    assert where(problems) == [
        (2, "text"), (3, "text"), (4, "label"), (5, None), (6, "label"),
        (7, "label"), (8, None), (9, "text"), (10, "text"),
    ]  # fmt: skip
    messages = [problem.message for problem in problems]
    assert messages[0] == "empty text" and messages[1] == "whitespace-only text"
    assert messages[2] == "column is missing" and messages[3].startswith("invalid JSON")
    assert "missing label" in messages[4] and "boolean true" in messages[5]
    assert "expected a JSON object" in messages[6] and "number 42" in messages[8]


def test_csv_problems_use_data_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nok,a\n,a\nmissing label,\ntoo,many,fields\nok,b\n")
    assert where(problems_of(path)) == [(2, "text"), (3, "label"), (4, None)]


def test_regression_labels_must_be_finite_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a", "label": 0.5}\n{"text": "b", "label": NaN}\n{"text": "c", "label": "x"}\n')
    problems = problems_of(path, task="regression")
    assert where(problems) == [(2, "label"), (3, "label")]
    assert "not a finite number" in problems[0].message and "expected a number" in problems[1].message
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("text,label\na,0.5\nb,1e999\n")
    [problem] = problems_of(csv_path)
    assert problem.row == 2 and "not a finite number" in problem.message


def test_non_utf8_bytes_are_reported_per_row(tmp_path: Path) -> None:
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "a"}\n')
    [problem] = problems_of(jsonl)
    assert (problem.row, problem.column, problem.message) == (2, "text", "text is not valid UTF-8")
    csv_path = tmp_path / "b.csv"
    csv_path.write_bytes(b"text,label\nok,a\nfine,\xff\xfe\n")
    assert where(problems_of(csv_path)) == [(2, "label")]
    raw = pa.array([b"ok", b"\xc3\x28"], pa.binary()).view(pa.string())  # a string column holding bad bytes
    parquet = write_parquet(tmp_path / "b.parquet", {"text": raw, "label": ["a", "b"]})
    assert where(problems_of(parquet)) == [(2, "text")]


def test_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("  \n\n")
    assert [p.message for p in problems_of(empty)] == ["the file is empty"]
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n")
    assert [p.message for p in problems_of(header_only)] == ["no data rows"]


def test_json_array_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text('[{"text": "a", "label": "b"}]')
    [problem] = problems_of(path)
    assert "found a JSON array" in problem.message


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    [problem] = problems_of(path)
    assert "not a readable Parquet file" in problem.message


def test_max_bytes_checked_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"{broken json\n" * 100)  # 1300 bytes of garbage: only the size is reported
    [problem] = problems_of(path, max_bytes=1000)
    assert problem.message == "file too large: 1.3 KiB, the limit is 1000 bytes"
    with pytest.raises(DatasetError, match="file too large"):
        load_dataset_bytes(path.read_bytes(), "big.jsonl", max_bytes=1000)


def test_max_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": "a", "label": "x"}] * 5)
    [problem] = problems_of(path, max_rows=4)
    assert problem.message == "too many rows: 5, the limit is 4"
    assert len(load_dataset(path, max_rows=5).examples) == 5


def test_error_text_lists_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [{"text": "", "label": "a"}] * 25)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    error = caught.value
    assert len(error.problems) == 25
    lines = str(error).splitlines()
    assert lines[0] == f"{path}: 25 problems in the dataset:"
    assert lines[1] == "  - row 1, column 'text': empty text"
    assert lines[20] == "  - row 20, column 'text': empty text"
    assert lines[21] == "  … and 5 more" and len(lines) == 22
    restored = pickle.loads(pickle.dumps(error))  # crosses process boundaries (Celery) intact
    assert restored.problems == error.problems and str(restored) == str(error)


def test_problem_str() -> None:
    assert str(Problem(12, "text", "empty text")) == "row 12, column 'text': empty text"
    assert str(Problem(None, "label", "missing column")) == "column 'label': missing column"
    assert str(Problem(None, None, "the file is empty")) == "the file is empty"


# --- check_splits ---------------------------------------------------------------------------------


def test_check_splits_accepts_fitting_splits() -> None:
    check_splits(make_dataset(["a", "a", "b", "b"]), make_dataset(["b", "a"]))
    check_splits(make_dataset(["a", "a"]), None)


def test_check_splits_unseen_dev_label_names_dev_rows() -> None:
    with pytest.raises(DatasetError) as caught:
        check_splits(make_dataset(["a", "a", "b", "b"]), make_dataset(["a", "c", "b", "c"]))
    [problem] = caught.value.problems
    assert (problem.row, problem.column) == (2, "label")
    assert problem.message == "dev label 'c' does not occur in train (dev rows 2, 4)"


def test_check_splits_thin_class_names_class_and_count() -> None:
    with pytest.raises(DatasetError) as caught:
        check_splits(make_dataset(["a", "a", "a", "b"]), None, min_per_class=3)
    [problem] = caught.value.problems
    assert problem.message == "class 'b' has 1 training example, at least 3 are needed"


def test_check_splits_task_and_pair_mismatch() -> None:
    classes = make_dataset(["1", "2", "1", "2"])
    with pytest.raises(DatasetError, match="task mismatch: train is classification, dev is regression"):
        check_splits(classes, make_dataset([1.5, 2], task="regression"))
    with pytest.raises(DatasetError, match="train has single texts, dev has text pairs"):
        check_splits(classes, make_dataset(["1", "2"], pair=True))


# --- stratified_split and head --------------------------------------------------------------------


def test_stratified_split_is_deterministic_and_covers_classes() -> None:
    labels = ["big"] * 50 + ["three"] * 3 + ["two"] * 2 + ["one"]
    ds = make_dataset(labels)
    train, dev = stratified_split(ds, dev_fraction=0.2, seed=7)
    again_train, again_dev = stratified_split(ds, dev_fraction=0.2, seed=7)
    assert train.examples == again_train.examples and dev.examples == again_dev.examples
    other_seed = stratified_split(ds, dev_fraction=0.2, seed=8)[1]
    assert other_seed.examples != dev.examples
    train_counts = Counter(e.label for e in train.examples)
    dev_counts = Counter(e.label for e in dev.examples)
    assert train_counts == {"big": 40, "three": 2, "two": 1, "one": 1}
    assert dev_counts == {"big": 10, "three": 1, "two": 1}
    assert sorted(train.examples + dev.examples, key=lambda e: e.row) == ds.examples  # rows point at the file
    assert train.labels == dev.labels == ds.labels
    check_splits(train, dev, min_per_class=1)


def test_stratified_split_regression() -> None:
    ds = make_dataset([i / 2 for i in range(20)], task="regression")
    train, dev = stratified_split(ds, dev_fraction=0.25, seed=1)
    assert (len(train.examples), len(dev.examples)) == (15, 5)
    assert {e.row for e in train.examples}.isdisjoint({e.row for e in dev.examples})
    assert dev.examples == stratified_split(ds, dev_fraction=0.25, seed=1)[1].examples


def test_stratified_split_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="dev_fraction"):
        stratified_split(make_dataset(["a", "b"]), dev_fraction=1.0)
    with pytest.raises(DatasetError, match="at least 2 examples"):
        stratified_split(make_dataset(["a"]))


def test_head_keeps_first_examples_and_present_classes() -> None:
    ds = make_dataset(["a", "b", "a", "c"])
    first = head(ds, 2)
    assert [e.row for e in first.examples] == [1, 2] and first.labels == ("a", "b")
    assert head(ds, 10).examples == ds.examples
    with pytest.raises(ValueError):
        head(ds, 0)


# --- real data and the torch-free contract --------------------------------------------------------


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} (the real datasets) is not present")
def test_real_datasets() -> None:
    movies = load_dataset(SHARED_DATA / "movie-sentiment" / "dev.jsonl")
    assert movies.task == "classification" and movies.labels == ("negative", "positive")
    assert len(movies.examples) == 1000 and movies.examples[-1].row == 1000
    trec_train = load_dataset(SHARED_DATA / "trec6" / "train.jsonl")
    trec_dev = load_dataset(SHARED_DATA / "trec6" / "dev.jsonl")
    assert trec_train.labels == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert len(trec_dev.examples) == 500
    check_splits(trec_train, trec_dev)


def test_data_modules_import_without_torch_or_pyarrow(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "p.parquet", {"text": ["a"], "label": ["b"]})
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import ssa_core.data.datasets as d\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow must be imported lazily'\n"
        f"ds = d.load_dataset({str(parquet)!r})\n"
        "assert ds.examples[0].text == 'a'\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
