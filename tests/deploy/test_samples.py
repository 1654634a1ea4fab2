"""The bundled sample dataset that trains the first-run model, and its license note."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ssa_core.data.datasets import check_splits, load_dataset
from tests.deploy.composefile import REPO

SAMPLES = REPO / "ssa_core/samples"
SHARED = REPO.parent / "shared/data/movie-sentiment"


def rows(split: str) -> list[dict[str, str]]:
    lines = (SAMPLES / "sentiment" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("split", "size"), [("train", 600), ("dev", 200)])
def test_split_has_the_documented_size_and_both_labels_balanced(split: str, size: int) -> None:
    data = rows(split)
    assert len(data) == size
    assert all(set(row) == {"text", "label"} and row["text"].strip() for row in data)
    counts = Counter(row["label"] for row in data)
    assert set(counts) == {"positive", "negative"}
    assert min(counts.values()) >= 0.4 * size


def test_samples_load_as_a_valid_train_dev_pair() -> None:
    train = load_dataset(SAMPLES / "sentiment/train.jsonl")
    dev = load_dataset(SAMPLES / "sentiment/dev.jsonl")
    check_splits(train, dev)
    assert train.task == "classification" and train.labels == ("negative", "positive")
    assert not {e.text for e in train.examples} & {e.text for e in dev.examples}


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (the source data) is not beside the repository")
@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_are_the_first_rows_of_the_source_split(split: str) -> None:
    sample = (SAMPLES / "sentiment" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    source = (SHARED / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    assert sample == source[: len(sample)]


def test_license_note_names_source_license_and_citations() -> None:
    note = (SAMPLES / "LICENSE.md").read_text(encoding="utf-8")
    for needle in ("MIT License", "Copyright (c) 2016 C.J. Hutto", "vaderSentiment==3.3.2",
                   "Hutto and Eric Gilbert", "ICWSM", "Bo Pang and Lillian Lee", "ACL 2005"):
        assert needle in note


def test_samples_ship_inside_the_package() -> None:
    import tomllib

    package_data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = package_data["package-data"]["ssa_core"]
    shipped = {p.relative_to(REPO / "ssa_core").as_posix() for p in SAMPLES.rglob("*") if p.is_file()}
    assert all(any(Path(name).match(pattern) for pattern in patterns) for name in shipped), shipped
