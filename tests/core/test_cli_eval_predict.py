"""`ssa eval MODEL DATA` and `ssa predict --input FILE`, run in-process through `ssa_core.cli.main.main` on the trained
tiny hybrid model and real movie-sentiment rows: happy paths, and exit status 2 with a clear message on bad input."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ssa_core.cli.main import USAGE_ERROR, main
from ssa_core.data.datasets import Dataset
from ssa_core.evaluation.metrics import expected_calibration_error, precision_recall
from ssa_core.runtime.predictor import Predictor


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dev_file(movie_dev: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{"text": e.text, "label": e.label} for e in movie_dev.examples]
    return write_jsonl(tmp_path_factory.mktemp("eval") / "dev.jsonl", rows)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_report(trained_model_dir: Path, dev_file: Path, movie_dev: Dataset,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "eval", str(trained_model_dir), str(dev_file), "--json", "--explain-sentences", "8")
    assert code == 0
    report = json.loads(out)
    predictions = Predictor.load(trained_model_dir, provider="cpu").predict(
        [e.text for e in movie_dev.examples], return_tokens=False, return_words=False)
    gold = np.asarray([0 if e.label == "negative" else 1 for e in movie_dev.examples])
    pred = np.asarray([0 if p.label == "negative" else 1 for p in predictions])
    scores = report["classification"]
    assert report["examples"] == len(movie_dev.examples) and report["data"] == "dev.jsonl"
    assert scores["accuracy"] == pytest.approx(float((gold == pred).mean()), abs=1e-4)
    assert np.asarray(scores["confusion"]).sum() == len(gold)
    assert np.asarray(scores["confusion"])[1, 1] == int(((gold == 1) & (pred == 1)).sum())
    precision, recall, _ = precision_recall(gold, pred, 2)
    assert [c["precision"] for c in scores["classes"]] == pytest.approx(precision.tolist(), abs=1e-4)
    assert [c["recall"] for c in scores["classes"]] == pytest.approx(recall.tolist(), abs=1e-4)
    assert [c["support"] for c in scores["classes"]] == [int((gold == 0).sum()), int((gold == 1).sum())]
    assert 0.0 <= scores["ece"] <= 1.0 and report["regression"] is None
    explained = report["explanations"]  # the hybrid model pools by its attention: scores as metrics.json has them
    assert explained["sentences"] == 8 and 0.0 < explained["entropy"] <= 1.0


def test_eval_tables_and_plot(trained_model_dir: Path, dev_file: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "confusion.png"
    code, out, _ = run(capsys, "eval", str(trained_model_dir), str(dev_file), "--plot", str(png),
                       "--explain-sentences", "0")
    assert code == 0
    assert "accuracy" in out and "macro-F1" in out and "ECE" in out and "Confusion matrix" in out
    assert "Per class" in out and "negative" in out and "not measured (--explain-sentences 0)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_plot_without_matplotlib_is_a_clear_error(trained_model_dir: Path, dev_file: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = run(capsys, "eval", str(trained_model_dir), str(dev_file), "--plot", str(tmp_path / "c.png"))
    assert code == USAGE_ERROR and "--plot needs matplotlib" in err and not (tmp_path / "c.png").exists()


def test_eval_refuses_labels_the_model_does_not_know(trained_model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "spam.jsonl", [{"text": "Buy now", "label": "spam"}, {"text": "Hi", "label": "ham"}])
    code, out, err = run(capsys, "eval", str(trained_model_dir), str(data))
    assert code == USAGE_ERROR and out == ""
    assert "labels the model does not know: ham, spam" in err


def test_eval_bad_arguments_exit_2(trained_model_dir: Path, dev_file: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as missing:
        main(["eval", str(trained_model_dir), str(tmp_path / "absent.jsonl")])
    assert missing.value.code == USAGE_ERROR and "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as not_a_model:
        main(["eval", str(tmp_path), str(dev_file)])
    assert not_a_model.value.code == USAGE_ERROR and "not a trained model folder" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine", "label": "positive"}\n{not json\n', encoding="utf-8")
    code, _, err = run(capsys, "eval", str(trained_model_dir), str(broken))
    assert code == USAGE_ERROR and "row 2" in err


def test_ece_of_perfectly_calibrated_and_overconfident_scores() -> None:
    gold = np.asarray([0, 0, 1, 1])
    calibrated = np.asarray([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(calibrated, gold) == pytest.approx(0.0)
    overconfident = np.asarray([[0.9, 0.1]] * 4)  # 90 % sure of class 0, right half the time
    assert expected_calibration_error(overconfident, gold) == pytest.approx(0.4)


def test_predict_input_jsonl_to_stdout(trained_model_dir: Path, dev_file: Path, movie_dev: Dataset,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "predict", str(trained_model_dir), "--input", str(dev_file), "--provider", "cpu")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    expected = Predictor.load(trained_model_dir, provider="cpu").predict(
        [e.text for e in movie_dev.examples], return_tokens=False, return_words=False)
    assert [r["text"] for r in records] == [e.text for e in movie_dev.examples]
    assert [r["label"] for r in records] == [p.label for p in expected]
    assert records[0]["scores"] == pytest.approx(expected[0].scores) and set(records[0]) >= {"score", "truncated"}


def test_predict_input_csv_out(trained_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text('sentence1,id\n"Dull, and far too long.",1\nA gorgeous film.,2\n', encoding="utf-8")
    target = tmp_path / "out.csv"
    code, _, err = run(capsys, "predict", str(trained_model_dir), "--input", str(source), "--output", str(target))
    assert code == 0 and "2 predictions written" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["text"] for r in rows] == ["Dull, and far too long.", "A gorgeous film."]
    assert set(rows[0]) == {"text", "label", "score", "score_negative", "score_positive", "truncated"}
    assert all(float(r["score_negative"]) + float(r["score_positive"]) == pytest.approx(1.0, abs=1e-5) for r in rows)


@pytest.mark.parametrize(("args", "message"), [
    (["some text", "--input", "{file}"], "either TEXTS or --input"),
    ([], "either TEXTS or --input"),
    (["--input", "{file}", "--text-column", "body"], "no 'body' column"),
    (["--input", "{file}", "--output", "{dir}/out.txt"], "use a .jsonl or .csv file name"),
    (["some text", "--output", "{dir}/out.jsonl"], "--output goes with --input"),
])
def test_predict_bad_input_exits_2(trained_model_dir: Path, dev_file: Path, tmp_path: Path, args: list[str],
                                   message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(file=dev_file, dir=tmp_path) for a in args]
    code, out, err = run(capsys, "predict", str(trained_model_dir), *argv)
    assert code == USAGE_ERROR and message in err and out == ""
