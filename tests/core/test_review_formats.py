"""Review round trip, export side: label records of the real tiny model as Label Studio tasks and Argilla records,
validated offline with each tool's own SDK (label_studio_sdk's LabelInterface checks the labeling config and every
prediction against it; argilla's Settings validate themselves, Records are built from our dicts and their
suggestions are checked against the settings' questions); the rationale rule on hand-made records; `ssa label
--format`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ssa_core.cli.main import main
from ssa_core.data.datasets import load_dataset
from ssa_core.labeling.labeler import Labeler, LabelOptions
from ssa_core.labeling.records import LabelRecord, LabelSpan
from ssa_core.labeling.review import (
    RATIONALE_LABEL,
    argilla_record,
    argilla_settings,
    argilla_stream,
    label_studio_config,
    label_studio_stream,
    label_studio_task,
    rationale_words,
)
from ssa_core.runtime.predictor import Predictor
from tests.conftest import sentiment_train_file

ROWS = 12
CLASSES = ["negative", "positive"]


def word(text: str, start: int, probe: float | None = None, attention: float | None = None,
         segment: int = 0) -> LabelSpan:
    return LabelSpan(text=text, start=start, end=start + len(text), segment=segment, attention=attention,
                     importance=None, probe=probe)


def record(words: list[LabelSpan], text: str = "", pair: str | None = None) -> LabelRecord:
    return LabelRecord(index=0, row=1, text=text or " ".join(w.text for w in words), text_pair=pair,
                       prediction="positive", score=0.9, scores={"negative": 0.1, "positive": 0.9}, truncated=False,
                       probed_words=len(words), tokens=words, words=words)


def test_the_rationale_is_the_top_share_of_positive_scores_probe_first() -> None:
    texts = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    words = [word(t, 2 * i, probe=p, attention=1.0 - p) for i, (t, p) in
             enumerate(zip(texts, [0.0, 0.5, -0.1, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0], strict=True))]
    # 10 scored words: the top 20 % are 2 words, by probe score (attention is ignored when probes exist)
    assert [w.text for w in rationale_words(record(words))] == ["b", "e"]
    # no probe: the attention ranks, the top 2 in text order
    attention = [word(t, 2 * i, attention=a) for i, (t, a) in
                 enumerate(zip(texts, [0.1, 0.0, 0.3, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0], strict=True))]
    assert [w.text for w in rationale_words(record(attention))] == ["c", "g"]
    # a score that is not positive never makes the rationale, even at the top; no scores at all: no spans
    assert rationale_words(record([word("a", 0, probe=-0.2), word("b", 2, probe=0.0)])) == []
    assert rationale_words(record([word("a", 0), word("b", 2)])) == []
    # words of text_pair are not marked
    paired = record([word("a", 0, probe=0.1), word("zz", 0, probe=0.9, segment=1)], text="a", pair="zz")
    assert [w.text for w in rationale_words(paired)] == ["a"]


@pytest.fixture(scope="module")
def records(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[LabelRecord]:
    lines = sentiment_train_file().read_text(encoding="utf-8").splitlines()[200:200 + ROWS]
    path = tmp_path_factory.mktemp("review-rows") / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    predictor = Predictor.load(tiny_model_dir, provider="cpu", intra_op_threads=1)
    return Labeler(predictor, LabelOptions(batch_size=8), labelled=True).label(load_dataset(path).examples, 0)


def test_label_studio_tasks_fit_the_labeling_config_by_the_sdk(records: list[LabelRecord]) -> None:
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(label_studio_config(CLASSES))
    interface.validate()  # raises on a config Label Studio would refuse
    assert [tag.name for tag in interface.ner_tags] == ["rationale"]
    tasks = json.loads("".join(label_studio_stream(records)))
    assert len(tasks) == ROWS
    spans = 0
    for task, rec in zip(tasks, records, strict=True):
        assert task["data"]["text"] == rec.text and task["data"]["row"] == rec.row
        for obj in interface.objects:  # every object tag's $variable is in the task's data
            assert task["data"].get(obj.value_name) is not None
        (prediction,) = task["predictions"]
        assert interface.validate_prediction(prediction, return_errors=True) == []
        labels = [r for r in prediction["result"] if r["type"] == "labels"]
        choices = [r for r in prediction["result"] if r["type"] == "choices"]
        assert choices[0]["value"]["choices"] == [rec.prediction]
        assert labels, "every real record has a rationale"
        for result in labels:
            value = result["value"]
            assert value["text"] == rec.text[value["start"]:value["end"]] and value["labels"] == [RATIONALE_LABEL]
        spans += len(labels)
    assert spans >= ROWS
    # the SDK does reject a task that does not fit (the check can fail)
    broken = label_studio_task(records[0])
    broken["predictions"][0]["result"][0]["value"]["labels"] = ["not-a-label"]
    assert interface.validate_prediction(broken["predictions"][0], return_errors=True)
    assert interface.validate_prediction({"result": [{"id": "x", "from_name": "prediction", "to_name": "text",
                                                      "type": "choices", "value": {"choices": ["neutral"]}}]},
                                         return_errors=True)


def argilla_objects(settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """argilla.Settings built from our JSON with a client that never connects (the SDK checks the connection when a
    client is made; fields and questions need one)."""
    import argilla as rg
    from argilla._api._client import APIClient

    monkeypatch.setattr(APIClient, "_validate_connection", lambda self: None)
    client = rg.Argilla(api_url="http://127.0.0.1:9", api_key="offline")
    fields = [rg.TextField(name=f["name"], required=f.get("required", True), client=client)
              for f in settings["fields"]]
    questions: list[Any] = []
    for q in settings["questions"]:
        if q["type"] == "span":
            questions.append(rg.SpanQuestion(name=q["name"], field=q["field"], labels=q["labels"],
                                             allow_overlapping=q["allow_overlapping"], client=client))
        else:
            assert q["type"] == "label_selection"
            questions.append(rg.LabelQuestion(name=q["name"], labels=q["labels"], client=client))
    metadata = [rg.IntegerMetadataProperty(name=m["name"], client=client) for m in settings["metadata"]]
    built = rg.Settings(fields=fields, questions=questions, metadata=metadata)
    built.validate()
    return built


def test_argilla_settings_and_records_by_the_sdk(records: list[LabelRecord], monkeypatch: pytest.MonkeyPatch) -> None:
    import argilla as rg

    document = json.loads("".join(argilla_stream(records, CLASSES)))
    settings = argilla_objects(document["settings"], monkeypatch)
    questions = {q.name: q for q in settings.questions}
    field_names = {f.name for f in settings.fields}
    assert len(document["records"]) == ROWS
    for raw, rec in zip(document["records"], records, strict=True):
        built = rg.Record(id=raw["id"], fields=raw["fields"], metadata=raw["metadata"],
                          suggestions=[rg.Suggestion(**s) for s in raw["suggestions"]])
        assert set(raw["fields"]) <= field_names and built.to_dict()["fields"]["text"] == rec.text
        for suggestion in raw["suggestions"]:
            question = questions[suggestion["question_name"]]
            if isinstance(question, rg.SpanQuestion):
                assert suggestion["value"]
                for span in suggestion["value"]:
                    assert span["label"] in question.labels and 0 <= span["start"] < span["end"] <= len(rec.text)
            else:
                assert suggestion["value"] in question.labels == CLASSES
    # the span question marks a field the settings have (Argilla checks that on the server)
    assert questions["rationale"].field in field_names
    # the settings' own validation can fail: two questions of one name
    bad = argilla_settings(CLASSES)
    bad["questions"].append(dict(bad["questions"][0]))
    with pytest.raises(Exception, match="rationale"):
        argilla_objects(bad, monkeypatch)
    assert argilla_record(records[0])["metadata"] == {"row": records[0].row}


def test_ssa_label_writes_review_tasks_and_the_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(sentiment_train_file().read_text(encoding="utf-8").splitlines()[:5]) + "\n",
                    encoding="utf-8")
    out = tmp_path / "tasks.json"
    assert main(["label", str(tiny_model_dir), str(rows), "--out", str(out), "--format", "label-studio",
                 "--threads", "1", "--probes", "8"]) == 0
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert len(tasks) == 5 and all(t["predictions"][0]["result"] for t in tasks)
    assert "<Labels name=\"rationale\" toName=\"text\">" in (tmp_path / "tasks.json.label_config.xml").read_text()
    argilla = tmp_path / "argilla.json"
    assert main(["label", str(tiny_model_dir), str(rows), "--out", str(argilla), "--format", "argilla",
                 "--threads", "1", "--probes", "8"]) == 0
    document = json.loads(argilla.read_text(encoding="utf-8"))
    assert len(document["records"]) == 5 and document["settings"]["questions"][0]["type"] == "span"
    # only the outputs are left: no temporary records file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argilla.json", "rows.jsonl", "tasks.json",
                                                          "tasks.json.label_config.xml"]
