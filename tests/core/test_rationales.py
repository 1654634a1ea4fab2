"""Review round trip, import side: reviewed rationales from a train file's `rationale_spans` column and from a
Label Studio export, validated with row numbers before anything trains; mapped to wordpieces with the real
tokenizer's offsets; trained on in place of weak labels (from iteration 1 on); counted in metrics.json and the
model card (`ssa train --rationales`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ssa_core.cli.main import main
from ssa_core.data.datasets import DatasetError, load_dataset
from ssa_core.data.rationales import (
    IGNORE,
    attach_file_rationales,
    label_studio_rows,
    label_studio_spans,
    restrict_to_spans,
    reviewed_count,
    token_targets,
)
from ssa_core.labeling.records import LabelRecord, LabelSpan
from ssa_core.labeling.review import label_studio_task
from tests.conftest import sentiment_train_file

TEXT = "The plot is thin but the acting is wonderful."


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_column_is_validated_with_row_numbers(tmp_path: Path) -> None:
    rows = [{"text": TEXT, "label": "positive", "rationale_spans": [[35, 44]]},
            {"text": "Dull.", "label": "negative", "rationale_spans": None},
            {"text": "Bad film.", "label": "negative", "rationale_spans": []},
            {"text": "Good film.", "label": "positive", "rationale_spans": [[0, 4], [0, 4]]}]
    data = load_dataset(write_jsonl(tmp_path / "ok.jsonl", rows))
    assert [e.rationale for e in data.examples] == [((35, 44),), None, None, ((0, 4),)]
    assert TEXT[35:44] == "wonderful" and reviewed_count(data.examples) == 2
    bad = [{"text": "Fine.", "label": "positive", "rationale_spans": [[3, 3]]},
           {"text": "Fine.", "label": "negative", "rationale_spans": [[0, 99]]},
           {"text": "Fine.", "label": "positive", "rationale_spans": "oops"},
           {"text": "Fine.", "label": "negative", "rationale_spans": [[0, 1.5]]},
           {"text": "Fine.", "label": "negative", "rationale_spans": [[-1, 2]]}]
    with pytest.raises(DatasetError) as caught:
        load_dataset(write_jsonl(tmp_path / "bad.jsonl", bad))
    found = {(p.row, p.column) for p in caught.value.problems}
    assert found == {(row, "rationale_spans") for row in range(1, 6)}
    text = str(caught.value)
    assert "start < end" in text and "past the text (5 characters)" in text and "two integers" in text
    # CSV holds the spans as JSON text
    csv = tmp_path / "rows.csv"
    csv.write_text('text,label,rationale_spans\n"Good film.",positive,"[[0, 4]]"\n"Bad.",negative,\n',
                   encoding="utf-8")
    assert [e.rationale for e in load_dataset(csv).examples] == [((0, 4),), None]


def ls_export(rows: list[tuple[int, str]], annotations: dict[int, list[tuple[int, int]]]) -> bytes:
    """Our own Label Studio tasks for (row, text), with a reviewer's annotation on some rows (as LS exports them)."""
    tasks = []
    for index, (row, text) in enumerate(rows):
        record = LabelRecord(index=index, row=row, text=text, prediction="positive", score=0.9,
                             scores={"negative": 0.1, "positive": 0.9}, truncated=False, probed_words=1,
                             tokens=[], words=[LabelSpan(text=text[:3], start=0, end=3, segment=0, attention=None,
                                                         importance=None, probe=0.5)])
        task = label_studio_task(record)
        if row in annotations:
            task["annotations"] = [
                {"was_cancelled": True, "result": []},
                {"was_cancelled": False, "result": [
                    {"from_name": "rationale", "to_name": "text", "type": "labels",
                     "value": {"start": s, "end": e, "text": text[s:e], "labels": ["rationale"]}}
                    for s, e in annotations[row]] + [{"from_name": "prediction", "to_name": "text",
                                                      "type": "choices", "value": {"choices": ["positive"]}}]}]
        tasks.append(task)
    return json.dumps(tasks).encode()


def test_a_label_studio_export_attaches_to_the_train_rows(tmp_path: Path) -> None:
    data = load_dataset(write_jsonl(tmp_path / "train.jsonl", [{"text": TEXT, "label": "positive"},
                                                               {"text": "Dull.", "label": "negative"}]))
    rows = [(e.row, e.text) for e in data.examples]
    reviewed = label_studio_spans(ls_export(rows, {1: [(35, 44), (0, 3)]}), "export.json")
    examples = attach_file_rationales(data.examples, reviewed, "export.json")
    assert [e.rationale for e in examples] == [((0, 3), (35, 44)), None]
    # an unknown row, another text, a span past the text, a bad file: refused, naming rows and tasks
    with pytest.raises(DatasetError, match="row 7: reviewed row is not a training row"):
        attach_file_rationales(data.examples, label_studio_spans(ls_export([(7, TEXT)], {7: [(0, 3)]}), "x"), "x")
    with pytest.raises(DatasetError, match="row 1: the reviewed text differs"):
        attach_file_rationales(data.examples, label_studio_spans(ls_export([(1, "Other.")], {1: [(0, 3)]}), "x"),
                               "x")
    with pytest.raises(DatasetError, match=r"task 1: row 1: span 0: \[40, 99\] ends past the text"):
        label_studio_spans(ls_export([(1, TEXT)], {1: [(40, 99)]}), "x")
    with pytest.raises(DatasetError, match=r"task 1: data\.row"):
        label_studio_spans(json.dumps([{"data": {"text": TEXT}}]).encode(), "x")
    with pytest.raises(DatasetError, match="not a JSON file"):
        label_studio_spans(b"{", "x")


def test_spans_become_wordpiece_targets_by_the_tokenizer_offsets(tiny_encoder_dir: Path) -> None:
    from ssa_core.data.datasets import Example
    from ssa_core.model.tokenize import encode_examples, load_tokenizer

    tokenizer = load_tokenizer(tiny_encoder_dir)
    example = Example(0, 1, TEXT, "A pair that is never supervised.", "positive", ((35, 44), (4, 8)))
    (encoded,) = encode_examples(tokenizer, [example], 64)
    targets = token_targets(encoded.positions, len(encoded), example.rationale or ())
    ones = [TEXT[p.start:p.end] for p in encoded.positions if targets[p.index] == 1.0]
    assert "".join(ones) == "plotwonderful"
    text_zeros = [p for p in encoded.positions if p.segment == 0 and targets[p.index] == 0.0]
    assert len(text_zeros) == sum(p.segment == 0 for p in encoded.positions) - len(ones)
    assert all(targets[p.index] == IGNORE for p in encoded.positions if p.segment == 1)
    assert targets[0] == IGNORE  # [CLS]


def reviewed_trainer(tiny_encoder_dir: Path, label_mode: str) -> tuple[Any, list[Any], set[int]]:
    """A hybrid Trainer on 24 sentiment rows, every 4th reviewed with the span (0, 3); the encoded rows; their rows."""
    import torch

    from ssa_core.config import ModelConfig, TrainConfig
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, structural_special_ids
    from ssa_core.train.trainer import Trainer

    data = load_dataset(sentiment_train_file())
    examples = data.examples[:24]
    reviewed = {e.row for e in examples[::4]}
    examples = attach_file_rationales(examples, {row: [(0, 3, e.text)] for e in examples if (row := e.row) in
                                                 reviewed}, "x")
    tokenizer = load_tokenizer(tiny_encoder_dir)
    cfg = ModelConfig(base_model=str(tiny_encoder_dir), method="hybrid", max_length=48, labels=data.labels)
    model = build_model(cfg, structural_special_ids(tokenizer))
    trainer = Trainer(model, TrainConfig(iterations=2, batch_size=8, seed=3, label_mode=label_mode),  # type: ignore[arg-type]
                      tokenizer.mask_token_id, tokenizer.pad_token_id or 0, torch.device("cpu"))
    return trainer, encode_examples(tokenizer, examples, 48), reviewed


def test_reviewed_rows_train_on_their_targets_and_are_never_probed(tiny_encoder_dir: Path) -> None:
    from ssa_core.train.checkpoint import TrainState

    trainer, encoded, reviewed = reviewed_trainer(tiny_encoder_dir, "keep")
    items, probe = trainer._training_set(1, encoded, np.random.default_rng(0), TrainState("x"), 10)
    assert probe is not None and probe.reviewed == len(reviewed) == 6
    by_row: dict[int, list[list[float]]] = {}
    for enc, labels in items:
        by_row.setdefault(enc.example.row, []).append(labels)
    for enc in encoded:
        if enc.example.row in reviewed:
            # once, with the reviewed targets: 1 on the first word's pieces, 0 on the other text pieces
            assert by_row[enc.example.row] == [token_targets(enc.positions, len(enc), ((0, 3),))]
    assert len(items) == len(encoded)  # "replace": every row once
    # iteration 0 is plain fine-tuning: the reviewed rows train on the originals' all-ones labels like every row
    first, _ = trainer._training_set(0, encoded, np.random.default_rng(0), TrainState("x"), 10)
    assert not any(0.0 in labels for _, labels in first)


def test_graded_reviewed_targets_are_the_models_probe_inside_the_spans(tiny_encoder_dir: Path) -> None:
    """Under `graded` a reviewed row carries no token target in iteration 0 (plain fine-tuning), and from iteration 1
    on the model's own graded probe of the row, zeroed outside the reviewed spans (or the even 1/0 target where no
    probe weight falls inside them), instead of an even distribution over the reviewed wordpieces."""
    from ssa_core.train.checkpoint import TrainState

    trainer, encoded, reviewed = reviewed_trainer(tiny_encoder_dir, "graded")
    first, _ = trainer._training_set(0, encoded, np.random.default_rng(0), TrainState("x"), 10)
    assert all(v == IGNORE for _, labels in first for v in labels)
    items, probe = trainer._training_set(1, encoded, np.random.default_rng(0), TrainState("x"), 10)
    assert probe is not None and probe.reviewed == 6 and 0 <= (probe.reviewed_even or 0) <= 6
    rows = [enc for enc in encoded if enc.example.row in reviewed]
    probed, _ = trainer.prober.graded(rows, trainer.model_cfg.labels, np.random.default_rng(0), 64)
    expected = {w.encoded.example.row: w.token_labels for w in probed}
    by_row = {enc.example.row: labels for enc, labels in items if enc.example.row in reviewed}
    assert set(by_row) == reviewed
    even = 0
    for enc in rows:
        flat = token_targets(enc.positions, len(enc), ((0, 3),))
        target = by_row[enc.example.row]
        assert [v for v, f in zip(target, flat, strict=True) if f == 0.0] == [0.0] * flat.count(0.0)
        assert all(t == IGNORE for t, f in zip(target, flat, strict=True) if f == IGNORE)
        if target == flat:
            even += 1
            assert not any(g > 0 for g, f in zip(expected[enc.example.row], flat, strict=True) if f == 1.0)
        else:  # the probe's own weights on the reviewed wordpieces, unchanged
            assert [t for t, f in zip(target, flat, strict=True) if f == 1.0] == \
                [g for g, f in zip(expected[enc.example.row], flat, strict=True) if f == 1.0]
            assert sum(target[p.index] for p in enc.positions if p.segment == 0) > 0
    assert even == probe.reviewed_even


def test_restrict_to_spans() -> None:
    graded = [IGNORE, 0.5, 0.2, 0.0, 0.3, IGNORE, IGNORE]
    spans = [IGNORE, 1.0, 0.0, 1.0, 0.0, 1.0, IGNORE]
    assert restrict_to_spans(graded, spans) == [IGNORE, 0.5, 0.0, 0.0, 0.0, IGNORE, IGNORE]
    assert restrict_to_spans([IGNORE, 0.0, 0.9, 0.0, 0.4, IGNORE, IGNORE], spans) is None  # nothing inside: fall back


def test_ssa_train_with_a_label_studio_file_counts_the_reviewed_rows(tiny_encoder_dir: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    lines = sentiment_train_file().read_text(encoding="utf-8").splitlines()[:40]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_dataset(train)
    rows = [(e.row, e.text) for e in data.examples[:10]]
    export = tmp_path / "review.json"
    export.write_bytes(ls_export(rows, {row: [(0, 3)] for row, _ in rows[:7]}))
    out = tmp_path / "model"
    assert main(["train", str(train), "--out", str(out), "--rationales", str(export), "--iterations", "2",
                 "--base-model", str(tiny_encoder_dir), "--max-length", "48", "--batch-size", "16"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    split_rows = metrics["human_rationales"]
    assert 0 < split_rows["rows"] <= 7 and split_rows["train_rows"] < 40  # some reviewed rows may go to dev
    assert f"human rationales: {split_rows['rows']} of {split_rows['train_rows']} training rows" in \
        (out / "README.md").read_text()
    assert metrics["iterations"][1]["probe"]["reviewed"] == split_rows["rows"]
    bad = tmp_path / "bad.json"
    bad.write_bytes(ls_export([(99, "nope")], {99: [(0, 3)]}))
    assert main(["train", str(train), "--out", str(tmp_path / "never"), "--rationales", str(bad),
                 "--base-model", str(tiny_encoder_dir)]) != 0
    assert "row 99: reviewed row is not a training row" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_label_studio_export_as_train_rows(tmp_path: Path) -> None:
    """The export itself as the train file: one row per task, spans of the latest kept annotation as
    rationale_spans, the label from data.label or else the annotation's chosen class; each bad task named."""
    region = {"type": "labels", "value": {"start": 35, "end": 44, "labels": ["rationale"]}}
    tasks = [
        {"data": {"text": TEXT, "row": 1, "label": "positive"}, "annotations": [{"result": [region]}]},
        {"data": {"text": "Dull."}, "annotations": [
            {"result": [{"type": "choices", "value": {"choices": ["negative"]}}]},
            {"was_cancelled": True, "result": [region]}]},
        {"data": {"text": "Fine.", "label": "positive"}, "predictions": [{"result": [region]}]},
    ]
    rows = label_studio_rows(json.dumps(tasks).encode(), "export.json")
    assert rows == [{"text": TEXT, "label": "positive", "rationale_spans": [[35, 44]]},
                    {"text": "Dull.", "label": "negative"}, {"text": "Fine.", "label": "positive"}]
    data = load_dataset(write_jsonl(tmp_path / "export.jsonl", rows))
    assert [e.rationale for e in data.examples] == [((35, 44),), None, None]
    bad = [{"data": {"text": TEXT}}, {"data": {"label": "positive"}},
           {"data": {"text": TEXT, "label": "x"}, "annotations": [{"result": [
               {"type": "labels", "value": {"start": 40, "end": 99}}]}]},
           {"data": {"text": TEXT, "label": "x"}, "annotations": [{"result": [
               {"type": "labels", "value": {"start": "0", "end": 3}}]}]}]
    with pytest.raises(DatasetError) as caught:
        label_studio_rows(json.dumps(bad).encode(), "export.json")
    found = [(p.row, p.column, p.message) for p in caught.value.problems]
    assert found == [
        (1, "data.label", "task 1: no label: data.label is missing and no annotation chooses a class"),
        (2, "data.text", "task 2: data.text must be a non-empty string"),
        (3, "annotations.result.value", "task 3: result 0: [40, 99] ends past the text (45 characters)"),
        (4, "annotations.result.value", "task 4: result 0: value.start and value.end must be integers (found "
                                        "'0', 3)")]
    with pytest.raises(DatasetError, match="non-empty JSON list of tasks"):
        label_studio_rows(b"{}", "export.json")


def test_ssa_train_reads_a_label_studio_export_as_the_train_file(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in sentiment_train_file().read_text(encoding="utf-8").splitlines()[:40]]
    tasks: list[dict[str, Any]] = [{"data": {"text": r["text"], "label": str(r["label"]), "row": n}}
                                   for n, r in enumerate(rows, start=1)]
    for task in tasks[:8]:
        task["annotations"] = [{"result": [{"type": "labels", "value": {"start": 0, "end": 3,
                                                                        "labels": ["rationale"]}}]}]
    export = tmp_path / "review.json"
    export.write_text(json.dumps(tasks), encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", str(export), "--out", str(out), "--iterations", "1", "--base-model",
                 str(tiny_encoder_dir), "--max-length", "32", "--batch-size", "16"]) == 0
    human = json.loads((out / "metrics.json").read_text())["human_rationales"]
    assert 0 < human["rows"] <= 8 and human["train_rows"] < 40
