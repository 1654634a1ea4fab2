"""Label records from the real (2-layer) tiny model through ONNX Runtime: one per row, in order, offsets into the
text, probe scores that are the drop of the predicted class's probability, flip labels against gold labels, and the
same records as JSONL and Parquet (also from `ssa label`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssa_core.cli.main import main
from ssa_core.data.datasets import load_dataset
from ssa_core.labeling.files import read_jsonl, write_parquet
from ssa_core.labeling.labeler import Labeler, LabelOptions, check_labels, labelled_chunks, mask_id_of
from ssa_core.labeling.records import LabelRecord
from ssa_core.runtime.predictor import Ids, Predictor, softmax, words_of
from tests.conftest import sentiment_train_file

ROWS = 24


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor.load(tiny_model_dir, provider="cpu", intra_op_threads=1)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = sentiment_train_file().read_text(encoding="utf-8").splitlines()[100:100 + ROWS]
    path = tmp_path_factory.mktemp("label-rows") / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_offsets(record: LabelRecord) -> None:
    texts = (record.text, record.text_pair or "")
    for span in record.tokens + record.words:
        assert span.text == texts[span.segment][span.start:span.end]
        assert span.text.strip() != ""


def test_one_record_per_row_in_order_with_offsets_and_probe_scores(predictor: Predictor, rows_file: Path) -> None:
    data = load_dataset(rows_file)
    labeler = Labeler(predictor, LabelOptions(probes_per_row=64, batch_size=16), labelled=True)
    chunks = list(labelled_chunks(labeler, data.examples, 0, ROWS, 5))
    records = [record for chunk in chunks for record in chunk]
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 5, 4]
    assert [r.index for r in records] == list(range(ROWS))
    assert [(r.row, r.text, r.label) for r in records] == [(e.row, e.text, e.label) for e in data.examples]
    for record in records:
        check_offsets(record)
        assert record.prediction == max(record.scores, key=record.scores.__getitem__)
        assert record.score == pytest.approx(max(record.scores.values()))
        assert record.correct == (record.prediction == record.label)
        assert record.probed_words == len(record.words)  # every word probed: no row has 64 words
        assert all(w.attention is not None and w.probe is not None for w in record.words)
        # a word carries the whole drop, its wordpieces share it
        assert sum(t.probe or 0.0 for t in record.tokens) == pytest.approx(sum(w.probe or 0.0 for w in record.words))
        assert all((t.attention or 0.0) >= 0.0 for t in record.tokens)
        flips = {w.flip for w in record.words}
        assert flips <= ({0, 1} if record.correct else {None})


def test_a_probe_score_is_the_drop_of_the_predicted_class(predictor: Predictor, rows_file: Path) -> None:
    example = load_dataset(rows_file).examples[3]
    record = Labeler(predictor, LabelOptions(), labelled=False).label([example], 7)[0]
    assert record.index == 7 and record.label is None and record.correct is None
    encoding = predictor.encode([example.text])[0]
    base = softmax(predictor.run([encoding])["logits"])[0]
    c = int(base.argmax())
    assert predictor.labels[c] == record.prediction
    mask = mask_id_of(predictor)
    for word, group in zip(record.words, words_of(encoding), strict=True):
        ids = [mask if k in group else t for k, t in enumerate(encoding.ids)]
        after = softmax(predictor.run([Ids(ids, list(encoding.type_ids))])["logits"])[0]
        assert word.probe == pytest.approx(float(base[c] - after[c]), abs=1e-4)
        assert word.flip is None


def test_probes_per_row_bounds_the_probed_words(predictor: Predictor, rows_file: Path) -> None:
    data = load_dataset(rows_file)
    long_row = max(data.examples, key=lambda e: len(e.text.split()))
    record = Labeler(predictor, LabelOptions(probes_per_row=3), labelled=True).label([long_row], 0)[0]
    assert record.probed_words == 3
    assert sum(w.probe is not None for w in record.words) == 3
    assert all(w.attention is not None for w in record.words)
    none = Labeler(predictor, LabelOptions(probes_per_row=0), labelled=True).label([long_row], 0)[0]
    assert none.probed_words == 0 and all(t.probe is None and t.flip is None for t in none.tokens)


def test_unlabelled_files_and_labels_the_model_does_not_know(predictor: Predictor, tmp_path: Path) -> None:
    texts = tmp_path / "texts.csv"
    texts.write_text('text\n"a warm, funny film"\n"dull and far too long"\n', encoding="utf-8")
    data = load_dataset(texts, require_labels=False)
    assert not data.labelled and [e.row for e in data.examples] == [1, 2]
    assert check_labels(predictor, data) == []
    records = Labeler(predictor, LabelOptions(), data.labelled).label(data.examples, 0)
    assert [r.text for r in records] == ["a warm, funny film", "dull and far too long"]
    assert all(r.label is None and all(w.flip is None for w in r.words) for r in records)
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "fine", "label": "meh"}) + "\n", encoding="utf-8")
    assert check_labels(predictor, load_dataset(odd, require_labels=False)) == ["meh"]


def test_ssa_label_writes_the_same_records_as_jsonl_and_parquet(predictor: Predictor, tiny_model_dir: Path,
                                                              rows_file: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    out, parquet = tmp_path / "labels.jsonl", tmp_path / "labels.parquet"
    assert main(["label", str(tiny_model_dir), str(rows_file), "--out", str(out), "--parquet", str(parquet),
                 "--batch-size", "8", "--threads", "1"]) == 0
    shown = capsys.readouterr().err  # the progress bar's last state: every row done
    assert f"labelling {rows_file.name}" in shown and f"{ROWS}/{ROWS}" in shown
    records = list(read_jsonl(out))
    data = load_dataset(rows_file)
    direct = Labeler(predictor, LabelOptions(batch_size=8), labelled=True).label(data.examples, 0)
    assert len(records) == ROWS
    for mine, theirs in zip(records, direct, strict=True):
        assert mine.index == theirs.index and mine.prediction == theirs.prediction
        assert [w.text for w in mine.words] == [w.text for w in theirs.words]
        assert np.allclose([w.probe for w in mine.words], [w.probe for w in theirs.words], atol=1e-5)
    table = pq.read_table(parquet)
    assert table.num_rows == ROWS and table.column("index").to_pylist() == list(range(ROWS))
    first = table.slice(0, 1).to_pylist()[0]
    assert first["text"] == records[0].text and first["prediction"] == records[0].prediction
    assert [w["start"] for w in first["words"]] == [w.start for w in records[0].words]
    assert dict(first["scores"]) == pytest.approx(records[0].scores)
    # the Parquet writer on its own, atomically: no temporary file is left behind
    again = tmp_path / "again.parquet"
    assert write_parquet(iter(records), again) == ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.parquet", "labels.jsonl", "labels.parquet"]


def test_ssa_label_refuses_labels_the_model_does_not_know(tiny_model_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "odd.jsonl"
    data.write_text(json.dumps({"text": "fine", "label": "meh"}) + "\n", encoding="utf-8")
    assert main(["label", str(tiny_model_dir), str(data), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert "'meh'" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
