"""Torch-free runtime: agreement with the PyTorch model, truncation rules, spans, and a torch-blocked import."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ssa_core.data.datasets import Dataset
from ssa_core.runtime.predictor import InputTooLong, ModelFolderError, Predictor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def predictor(trained_model_dir: Path) -> Predictor:
    return Predictor.load(trained_model_dir, provider="cpu")


def test_predictor_agrees_with_the_torch_model(
    predictor: Predictor, trained_model_dir: Path, movie_dev: Dataset
) -> None:
    import torch

    from ssa_core.export.folder import load_trained
    from ssa_core.model.tokenize import encode_examples

    model, tokenizer, _ = load_trained(trained_model_dir)
    examples = movie_dev.examples[:6]
    predictions = predictor.predict([e.text for e in examples], batch_size=4)
    assert predictor.provider == "CPUExecutionProvider" and predictor.labels == ("negative", "positive")
    for e, encoded, prediction in zip(examples, encode_examples(tokenizer, examples, 64), predictions, strict=True):
        with torch.no_grad():
            ids = torch.tensor([encoded.input_ids])
            out = model(ids, torch.ones_like(ids), torch.tensor([encoded.token_type_ids]))
        probs = torch.softmax(out.logits[0], -1).numpy()
        assert prediction.scores == pytest.approx(dict(zip(predictor.labels, probs.tolist(), strict=True)), abs=1e-4)
        assert prediction.label == predictor.labels[int(probs.argmax())]
        assert prediction.score == pytest.approx(float(max(probs)), abs=1e-4)
        assert prediction.tokens is not None and prediction.words is not None and not prediction.truncated
        assert len(prediction.tokens) == len(encoded.positions)
        for token, p in zip(prediction.tokens, encoded.positions, strict=True):
            assert token.text == e.text[token.start : token.end] and (token.start, token.end) == (p.start, p.end)
            assert token.attention == pytest.approx(float(out.attention[0, p.index]), abs=1e-5)
            assert token.importance == pytest.approx(float(out.importance[0, p.index]), abs=1e-5)
        assert sum(t.attention or 0 for t in prediction.tokens) == pytest.approx(1.0, abs=1e-5)
        assert sum(w.attention or 0 for w in prediction.words) == pytest.approx(1.0, abs=1e-5)
        assert all(w.text == e.text[w.start : w.end] for w in prediction.words)


def test_batching_does_not_change_predictions(predictor: Predictor, movie_dev: Dataset) -> None:
    texts = [e.text for e in movie_dev.examples[:9]]
    alone = [predictor.predict([t], return_tokens=False, return_words=False)[0] for t in texts]
    together = predictor.predict(texts, batch_size=4, return_tokens=False, return_words=False)
    for a, b in zip(alone, together, strict=True):
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=1e-5)
        assert b.tokens is None and b.words is None


def test_too_long_input_raises_or_is_truncated(predictor: Predictor) -> None:
    short, long = "A fine film.", "An astonishingly overlong and meandering picture, " * 20
    length = predictor.token_count(long)
    assert length > predictor.max_length == 64
    with pytest.raises(InputTooLong) as caught:
        predictor.predict([short, long], truncate=False)
    assert (caught.value.index, caught.value.length, caught.value.max_length) == (1, length, 64)
    assert "input 1" in str(caught.value)
    first, second = predictor.predict([short, long])
    assert not first.truncated and second.truncated
    assert second.tokens is not None and len(second.tokens) == 64 - 2
    assert all(t.text == long[t.start : t.end] for t in second.tokens)
    assert predictor.token_count(long) == length  # truncation is not left switched on


def test_exactly_max_length_is_not_truncated(predictor: Predictor) -> None:
    text = " ".join(["good"] * 62)
    assert predictor.token_count(text) == 64
    (prediction,) = predictor.predict([text], truncate=False)
    assert not prediction.truncated


def test_empty_request_and_broken_folders(predictor: Predictor, tmp_path: Path) -> None:
    assert predictor.predict([]) == []
    with pytest.raises(ModelFolderError, match=r"ssa\.json is missing"):
        Predictor.load(tmp_path)
    for name in ("ssa.json", "model.onnx", "tokenizer.json"):
        (tmp_path / name).write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        Predictor.load(tmp_path)
    (tmp_path / "ssa.json").write_text(json.dumps({"model_id": "x"}))
    with pytest.raises(ModelFolderError, match="lacks 'version'"):
        Predictor.load(tmp_path)


def test_cuda_request_falls_back_to_cpu_with_a_warning(
    trained_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ssa_core.runtime.predictor import cuda_usable

    if cuda_usable():
        pytest.skip("a usable CUDA provider is present: nothing falls back")
    with caplog.at_level(logging.WARNING, logger="ssa.runtime"):
        predictor = Predictor.load(trained_model_dir, provider="cuda")
    assert predictor.provider == "CPUExecutionProvider"
    assert any("CUDA execution provider unavailable" in r.message for r in caplog.records)


TORCH_BLOCKED = """
import importlib.abc, json, sys
from pathlib import Path

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch import blocked: {name}")
        return None

sys.meta_path.insert(0, BlockTorch())
import ssa_core.data.datasets, ssa_core.runtime.predictor, ssa_core.data.textspans
try:
    import ssa_core.runtime.artifacts
except ModuleNotFoundError as exc:
    if exc.name != "ssa_core.runtime.artifacts":
        raise
predictor = ssa_core.runtime.predictor.Predictor.load(Path(sys.argv[1]), provider="cpu")
(prediction,) = predictor.predict(["A warm, funny and clever film."])
print(json.dumps({"label": prediction.label, "words": len(prediction.words),
                  "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def test_runtime_works_with_torch_blocked(trained_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TORCH_BLOCKED, str(trained_model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] == [] and result["label"] in ("negative", "positive") and result["words"] == 8


def test_softmax_is_stable_for_large_logits() -> None:
    from ssa_core.runtime.predictor import softmax

    probs = softmax(np.array([[1000.0, 1001.0], [-5.0, -5.0]]))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs, [[1 / (1 + np.e), np.e / (1 + np.e)], [0.5, 0.5]])


def test_word_spans_cover_a_trailing_combining_mark(tiny_model_dir: Path) -> None:
    predictor = Predictor.load(tiny_model_dir, provider="cpu")  # an uncased tokenizer: it strips the accent
    (prediction,) = predictor.predict(["a cafe\u0301"], return_tokens=True, return_words=True)
    assert prediction.words is not None and prediction.tokens is not None
    cafe = prediction.words[-1]
    assert (cafe.text, cafe.start, cafe.end) == ("cafe\u0301", 2, 7)  # "café" with the accent as a combining mark
    assert max(token.end for token in prediction.tokens) == len("a cafe\u0301")


def test_calls_that_overlap_run_on_the_overlap_session_with_the_same_results(trained_model_dir: Path,
                                                                             movie_dev: Dataset) -> None:
    """overlap_threads adds a second session (fewer intra-op threads); a lone call keeps the main one, a call made
    while another is in flight takes the second, and both give the same predictions."""
    predictor = Predictor.load(trained_model_dir, provider="cpu", intra_op_threads=2, overlap_threads=1)
    assert predictor.overlap_session is not None and predictor.overlap_session is not predictor.session
    used: list[object] = []
    run_session = predictor.run_session
    predictor.run_session = lambda session, feeds: used.append(session) or run_session(session, feeds)
    texts = [e.text for e in movie_dev.examples[:5]]
    alone = predictor.predict(texts, batch_size=8)
    runs_alone, used[:] = list(used), []
    with predictor.overlapping():  # as if another inference worker were in the middle of its batch
        overlapped = predictor.predict(texts, batch_size=8)
    assert runs_alone and all(session is predictor.session for session in runs_alone)
    assert used and all(session is predictor.overlap_session for session in used)
    for a, b in zip(alone, overlapped, strict=True):
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=1e-5)
        assert [t.attention for t in a.tokens or []] == pytest.approx([t.attention for t in b.tokens or []], abs=1e-5)
    assert predictor._in_flight == 0


@pytest.mark.parametrize(("intra", "overlap"), [(None, None), (2, 2), (1, 1), (2, 0)])
def test_no_overlap_session_unless_it_has_fewer_threads(tiny_model_dir: Path, intra: int | None,
                                                        overlap: int | None) -> None:
    predictor = Predictor.load(tiny_model_dir, provider="cpu", intra_op_threads=intra, overlap_threads=overlap)
    assert predictor.overlap_session is None
    with predictor.overlapping():
        assert predictor.predict(["a fine film"])[0].label


def spins(session: ort.InferenceSession) -> bool:
    """Whether a session's intra-op threads busy-wait within a run (ONNX Runtime's default unless turned off)."""
    options = session.get_session_options()
    try:
        return options.get_session_config_entry("session.intra_op.allow_spinning") != "0"
    except RuntimeError:  # the key is absent: ONNX Runtime's default, spinning
        return True


@pytest.mark.parametrize(("allow_spinning", "overlap", "main_spins"), [(False, None, False), (True, None, True),
                                                                        (False, 1, True)])
def test_the_main_session_spins_only_when_asked_or_when_it_runs_lone_calls(
        tiny_model_dir: Path, allow_spinning: bool, overlap: int | None, main_spins: bool) -> None:
    """With an overlap session the main one only runs lone calls, so its threads spin within a run whatever
    allow_spinning says; spinning always stops when a run returns (no CPU taken between runs)."""
    predictor = Predictor.load(tiny_model_dir, provider="cpu", intra_op_threads=2, allow_spinning=allow_spinning,
                               overlap_threads=overlap)
    assert spins(predictor.session) is main_spins
    if main_spins:
        assert predictor.session.get_session_options().get_session_config_entry("session.force_spinning_stop") == "1"
    if predictor.overlap_session is not None:
        assert spins(predictor.overlap_session) is allow_spinning
