"""End to end on real data with the 2-layer MiniLM: the model folder, weak labels, resume, cancellation,
every variant, text pairs with regression, and a RoBERTa-style tokenizer."""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.datasets import Dataset, head, load_dataset
from ssa_core.export.folder import load_trained
from ssa_core.model.tokenize import encode_examples
from ssa_core.runtime.modelmeta import read_card
from ssa_core.runtime.predictor import Predictor
from ssa_core.train.pipeline import label_dataset, train_model
from ssa_core.train.trainer import Progress, TrainingCancelled
from tests.core.conftest import TrainedRun, movie_split
from tests.core.helpers import single_logits


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_token_records(records: list[dict[str, Any]], allowed: set[int] | None) -> None:
    """Every wordpiece's character span slices its segment's text; labels are in `allowed` (None: graded targets,
    any value >= 0, or -1 for the words of a long example left out by the probe_words cap)."""
    for record in records:
        texts = (record["text"], record["text_pair"] or "")
        assert record["tokens"], record
        for token in record["tokens"]:
            assert token["text"] == texts[token["segment"]][token["start"] : token["end"]]
            if allowed is not None:
                assert token["label"] in allowed, token
            else:
                assert token["label"] >= 0 or token["label"] == -1, token
            piece = token["wordpiece"].removeprefix("##")
            assert piece == "[UNK]" or folded(piece) == folded(token["text"]), token


def folded(text: str) -> str:
    """Lower-cased and accent-stripped, as the uncased MiniLM tokenizer sees text."""
    return unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode().lower()


@dataclass
class Recorder:
    """A training callback that records progress and asks to stop once `stop_after` optimizer steps of iteration
    `stop_in` are done."""

    stop_in: int | None = None
    stop_after: int = 0
    seen: list[Progress] = field(default_factory=list)

    def on_progress(self, progress: Progress) -> None:
        self.seen.append(progress)

    def steps_in(self, iteration: int) -> list[int]:
        """Global step numbers completed during `iteration`, each once: the iteration's first report (probing or
        training start) gives the step it started from."""
        steps = [p.step for p in self.seen if p.iteration == iteration and p.stage in ("probing", "training")]
        trained = {p.step for p in self.seen if p.iteration == iteration and p.stage == "training"}
        return sorted(step for step in trained if step > min(steps)) if steps else []

    def should_stop(self) -> bool:
        if self.stop_in is None or not any(p.iteration == self.stop_in and p.stage == "training" for p in self.seen):
            return False
        return len(self.steps_in(self.stop_in)) >= self.stop_after


# ---- the model folder -------------------------------------------------------------------------------------


def test_model_folder_is_complete(trained_run: TrainedRun) -> None:
    out = trained_run.out_dir
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "ssa.json",
        "model.onnx",
        "metrics.json",
        "README.md",
        "modeling_ssa.py",
        "weak_labels/iter1.jsonl",
    ):
        assert (out / name).is_file(), name
    meta = json.loads((out / "ssa.json").read_text())
    assert meta["format"] == 2 and meta["model_id"] == "tiny-hybrid" and meta["method"] == "hybrid"
    assert meta["attention_scores"] == "logit"
    assert meta["labels"] == ["negative", "positive"] and meta["max_length"] == 64 and meta["pair"] is False
    assert meta["onnx"]["file"] == "model.onnx" and meta["onnx"]["outputs"] == ["logits", "importance", "attention"]
    onnx_digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert meta["version"] == onnx_digest[:12]
    for name, digest in meta["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(trained_run.metrics))
    assert metrics["metric"] == meta["metric"] == "accuracy"
    assert [r["iteration"] for r in metrics["iterations"]] == [0, 1]
    best = metrics["iterations"][metrics["best_iteration"]]["dev"]
    assert metrics["dev"] == best and meta["dev_metric"] == best["accuracy"]
    assert best["accuracy"] == max(r["dev"]["accuracy"] for r in metrics["iterations"])
    assert "probe" not in metrics["iterations"][0] and metrics["iterations"][1]["share"] == pytest.approx(0.2)
    card = read_card(out)
    assert card is not None and card.startswith("# Model card: tiny-hybrid") and f"{best['accuracy']:.4f}" in card
    assert "| 0 | 0.0000 |" in card and "| 1 | 0.2000 |" in card


def test_saved_model_is_the_best_iteration(trained_run: TrainedRun) -> None:
    """The folder holds the weights of the best dev iteration: the ONNX model reproduces that dev accuracy."""
    metrics = trained_run.metrics
    predictions = Predictor.load(trained_run.out_dir, provider="cpu").predict(
        [e.text for e in trained_run.dev.examples], return_tokens=False, return_words=False
    )
    hits = [p.label == e.label for p, e in zip(predictions, trained_run.dev.examples, strict=True)]
    assert sum(hits) / len(hits) == pytest.approx(metrics["dev"]["accuracy"])


def test_weak_labels_of_iteration_1(trained_run: TrainedRun) -> None:
    """The default `graded` rule: round(0.2 · N) examples drawn at random, each probed word by word; every record
    carries a graded target >= 0 on each wordpiece, with character spans into its text."""
    records = read_jsonl(trained_run.out_dir / "weak_labels" / "iter1.jsonl")
    probe = trained_run.metrics["iterations"][1]["probe"]
    assert len(records) == probe["selected"] == round(0.2 * len(trained_run.train.examples)) > 0
    assert all(r["selected"] for r in records)
    texts = {e.example_id: e.text for e in trained_run.train.examples}
    assert len({r["example_id"] for r in records}) == len(records)
    for record in records:
        assert record["iteration"] == 1 and texts[record["example_id"]] == record["text"]
        for token in record["tokens"]:
            assert token["label"] >= 0 and record["text"][token["start"] : token["end"]] == token["text"]
    assert any(t["label"] > 0 for r in records for t in r["tokens"])
    assert 0.0 < probe["target_entropy"] <= 1.0


@pytest.mark.parametrize("mode", ["keep", "flip"])
def test_label_dataset_writes_weak_labels(
    trained_model_dir: Path, movie_dev: Dataset, tmp_path: Path, mode: str
) -> None:
    data = head(movie_dev, 12)
    out = tmp_path / "labels" / f"{mode}.jsonl"
    stats = label_dataset(trained_model_dir, data, out, label_mode=mode, rounds=2, device="cpu")
    records = read_jsonl(out)
    assert stats["probed_examples"] == 12
    if mode == "keep":
        assert 0 < len(records) == stats["kept_copies"] <= 12
        check_token_records(records, {0, 1})
    else:
        assert len(records) == 12 and stats["masked_copies"] == 24
        check_token_records(records, {-1, 0, 1})
        assert all(sum(t["label"] != -1 for t in r["tokens"]) == 2 for r in records)


# ---- resume and cancellation ----------------------------------------------------------------------------


def test_cancel_then_resume_matches_the_uninterrupted_run(trained_run: TrainedRun, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    steps = math.ceil(len(trained_run.train.examples) / trained_run.train_cfg.batch_size)
    run = trained_run
    stopper = Recorder(stop_in=1, stop_after=1)
    with pytest.raises(TrainingCancelled, match="iteration 1"):
        train_model(
            run.train,
            run.dev,
            run.model_cfg,
            run.train_cfg,
            tmp_path / "first",
            callback=stopper,
            checkpoint_dir=checkpoints,
            device="cpu",
        )
    assert stopper.steps_in(0) == list(range(1, steps + 1)) and stopper.steps_in(1) == [steps + 1]
    assert json.loads((checkpoints / "latest.json").read_text()) == {"checkpoint": "iter-1"}
    assert not (tmp_path / "first" / "model.onnx").exists()

    resumer = Recorder()
    result = train_model(
        run.train,
        run.dev,
        run.model_cfg,
        run.train_cfg,
        tmp_path / "resumed",
        callback=resumer,
        checkpoint_dir=checkpoints,
        device="cpu",
        model_id="tiny-hybrid",
    )
    assert resumer.steps_in(0) == [] and resumer.steps_in(1) == list(range(steps + 1, 2 * steps + 1))
    stages = [p.stage for p in resumer.seen]
    assert stages[0] == "loading" and stages[-2:] == ["exporting", "done"] and "probing" in stages
    assert resumer.seen[-1].metrics == result.metrics

    expected, got = (
        load_file(str(run.out_dir / "model.safetensors")),
        load_file(str(result.out_dir / "model.safetensors")),
    )
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)
    assert without_seconds(result.metrics.to_dict()) == without_seconds(run.metrics)

    # A retry after a crash during export finds every iteration done: it only writes the folder again.
    again = Recorder()
    train_model(
        run.train,
        run.dev,
        run.model_cfg,
        run.train_cfg,
        tmp_path / "again",
        callback=again,
        checkpoint_dir=checkpoints,
        device="cpu",
    )
    assert again.steps_in(0) == again.steps_in(1) == []
    again_weights = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert all(torch.equal(again_weights[name], got[name]) for name in got)


def without_seconds(metrics: dict[str, Any]) -> dict[str, Any]:
    return {**metrics, "iterations": [{k: v for k, v in r.items() if k != "seconds"} for r in metrics["iterations"]]}


def test_checkpoint_of_another_run_is_refused(trained_run: TrainedRun, tmp_path: Path) -> None:
    run = trained_run
    small = head(run.train, 16)
    cfg = TrainConfig(iterations=2, batch_size=16)
    with pytest.raises(TrainingCancelled):
        train_model(
            small,
            run.dev,
            run.model_cfg,
            cfg,
            tmp_path / "a",
            checkpoint_dir=tmp_path / "ck",
            callback=Recorder(stop_in=1, stop_after=0),
            device="cpu",
        )
    with pytest.raises(ValueError, match="belongs to another run"):
        train_model(
            small,
            run.dev,
            run.model_cfg,
            TrainConfig(iterations=2, batch_size=16, seed=1),
            tmp_path / "b",
            checkpoint_dir=tmp_path / "ck",
            device="cpu",
        )


# ---- variants, pairs + regression, RoBERTa -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "mode"), [("baseline", "keep"), ("co", "flip"), ("layer", "keep"), ("hybrid", "flip")]
)
def test_every_variant_trains_probes_and_exports(
    tiny_encoder_dir: Path, tmp_path: Path, method: str, mode: str
) -> None:
    train, dev = movie_split("train", 24), movie_split("dev", 8)
    cfg = ModelConfig(base_model=str(tiny_encoder_dir), method=method, max_length=48, labels=train.labels)  # type: ignore[arg-type]
    out = tmp_path / method
    result = train_model(
        train,
        dev,
        cfg,
        TrainConfig(iterations=2, batch_size=8, label_mode=mode, share_step=0.5, share_balance="none"),  # type: ignore[arg-type]
        out,
        device="cpu",
    )
    second = result.metrics.to_dict()["iterations"][1]
    assert max(result.parity.values()) <= 1e-4
    if method == "baseline":
        assert "probe" not in second and not (out / "weak_labels").exists()
    else:
        probe = second["probe"]
        assert probe["probed_examples"] == 24
        assert probe["selected"] == (12 if mode == "flip" else min(12, probe["kept_copies"])) > 0
        records = read_jsonl(out / "weak_labels" / "iter1.jsonl")
        check_token_records(records, {-1, 0, 1} if mode == "flip" else {0, 1})
    predictor = Predictor.load(out, provider="cpu")
    (prediction,) = predictor.predict(["A warm and witty film."])
    assert prediction.tokens is not None
    attention = [t.attention for t in prediction.tokens]
    importance = [t.importance for t in prediction.tokens]
    assert (attention[0] is None) == (method in ("baseline", "co"))
    assert (importance[0] is None) == (method == "baseline")


def write_pairs(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sentence_pairs(name: str, pairs: int) -> list[dict[str, Any]]:
    """Pairs of consecutive movie sentences; the label is the share of positive sentences (0, 0.5 or 1)."""
    rows = movie_split(name, 2 * pairs).examples
    return [
        {"text": a.text, "text_pair": b.text, "label": ((a.label == "positive") + (b.label == "positive")) / 2}
        for a, b in zip(rows[::2], rows[1::2], strict=True)
    ]


def test_pairs_with_regression_train_export_and_predict(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    train = load_dataset(write_pairs(tmp_path / "train.jsonl", sentence_pairs("train", 24)), task="regression")
    dev = load_dataset(write_pairs(tmp_path / "dev.jsonl", sentence_pairs("dev", 8)), task="regression")
    assert train.pair and train.labels == ()
    cfg = ModelConfig(base_model=str(tiny_encoder_dir), method="hybrid", task="regression", max_length=96)
    out = tmp_path / "model"
    result = train_model(
        train, dev, cfg, TrainConfig(iterations=2, batch_size=8, learning_rate=1e-4), out, device="cpu"
    )
    assert result.metrics.metric == "pearson" and set(result.metrics.dev) == {"pearson", "spearman", "mse"}
    meta = json.loads((out / "ssa.json").read_text())
    assert meta["pair"] is True and meta["task"] == "regression" and meta["labels"] == []
    records = read_jsonl(out / "weak_labels" / "iter1.jsonl")
    check_token_records(records, None)  # graded: how far masking each word moves the predicted value
    assert any(t["label"] > 0 for r in records for t in r["tokens"])
    assert records and all({t["segment"] for t in r["tokens"]} == {0, 1} for r in records)

    predictor = Predictor.load(out, provider="cpu")
    assert predictor.pair and "token_type_ids" in predictor.input_names
    model, tokenizer, _ = load_trained(out)
    examples = dev.examples[:3]
    predictions = predictor.predict([(e.text, e.text_pair or "") for e in examples])
    for e, encoded, prediction in zip(examples, encode_examples(tokenizer, examples, 96), predictions, strict=True):
        expected = float(single_logits(model, encoded.input_ids, encoded.token_type_ids)[0])
        assert isinstance(prediction.label, float) and prediction.label == pytest.approx(expected, abs=1e-4)
        assert prediction.scores == {}
        assert prediction.words is not None and {w.segment for w in prediction.words} == {0, 1}
        texts = (e.text, e.text_pair or "")
        assert all(w.text == texts[w.segment][w.start : w.end] for w in prediction.words)


def test_roberta_style_model_trains_and_serves(roberta_dir: Path, tmp_path: Path) -> None:
    train, dev = movie_split("train", 24), movie_split("dev", 8)
    cfg = ModelConfig(base_model=str(roberta_dir), method="hybrid", max_length=64, labels=train.labels)
    out = tmp_path / "roberta"
    result = train_model(train, dev, cfg, TrainConfig(iterations=2, batch_size=8, share_step=0.5), out, device="cpu")
    assert result.metrics.to_dict()["iterations"][1]["probe"]["masked_copies"] > 0
    meta = json.loads((out / "ssa.json").read_text())
    assert meta["pad_token_id"] == 1
    for record in read_jsonl(out / "weak_labels" / "iter1.jsonl"):
        assert all(t["wordpiece"] not in ("[MASK]", "<mask>", "<s>", "</s>") for t in record["tokens"])
    predictor = Predictor.load(out, provider="cpu")
    text = "A warm and witty film, sadly too long."
    _, tokenizer, _ = load_trained(out)
    assert predictor.encode([text])[0].ids == tokenizer(text)["input_ids"]  # same tokens as in training
    prediction, short = predictor.predict([text, "Dull."])  # one padded batch: pad id 1 must be honoured
    (alone,) = predictor.predict(["Dull."])
    assert short.scores == pytest.approx(alone.scores, abs=1e-5)
    assert prediction.words is not None and [w.text for w in prediction.words][:2] == ["A", "warm"]
    assert sum(w.attention or 0 for w in prediction.words) == pytest.approx(1.0, abs=1e-5)
