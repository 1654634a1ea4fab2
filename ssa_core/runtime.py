"""Torch-free inference: ONNX Runtime + tokenizers + NumPy. Returns labels, scores and per-token SSA attention
with character spans into the original text. This module (and what it imports) must never import torch."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from ssa_core.modelmeta import ONNX_FILE, RUNTIME_FILES, TOKENIZER_FILE, ModelMeta, ModelMetaError
from ssa_core.textspans import Span, token_positions, token_spans, word_spans

log = logging.getLogger("ssa.runtime")

Item = str | tuple[str, str]
ProviderChoice = Literal["auto", "cuda", "cpu"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class InputTooLong(ValueError):
    """An input exceeds the model's max length and truncation was not allowed."""

    def __init__(self, index: int, length: int, max_length: int) -> None:
        super().__init__(f"input {index} has {length} tokens, more than the model's maximum of {max_length}")
        self.index, self.length, self.max_length = index, length, max_length


class ModelFolderError(ValueError):
    """A model folder is missing files or holds an unreadable ssa.json."""


@dataclass
class Prediction:
    label: str | float
    score: float
    scores: dict[str, float]
    tokens: list[Span] | None
    words: list[Span] | None
    truncated: bool


def cuda_usable() -> bool:
    """CUDA EP is offered by this onnxruntime build and a CUDA driver is loadable."""
    if CUDA not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def choose_providers(choice: ProviderChoice) -> list[str]:
    """Execution providers to ask for; logs one clear line when CUDA was wanted but cannot be used."""
    if choice == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    level = logging.WARNING if choice == "cuda" else logging.INFO
    log.log(level, "CUDA execution provider unavailable (no GPU build or no driver): using the CPU provider")
    return [CPU]


# The cost of one extra model run, in tokens: on CPU a run costs about as much as a few tokens, so inputs of unlike
# lengths run apart (no padding); on a GPU a run costs far more than a token, so batches stay large.
RUN_OVERHEAD_TOKENS = {CPU: 8}
GPU_RUN_OVERHEAD_TOKENS = 2048


def length_buckets(lengths: Sequence[int], max_size: int, overhead: int) -> list[tuple[int, int]]:
    """Cut ascending `lengths` into runs [start, end) of at most `max_size` inputs, minimizing the total cost
    sum(overhead + size * longest): the tokens computed, padding included, plus a fixed cost per run."""
    best = [0] + [float("inf")] * len(lengths)
    cut = [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        for start in range(max(0, end - max_size), end):
            cost = best[start] + overhead + (end - start) * lengths[end - 1]
            if cost < best[end]:
                best[end], cut[end] = cost, start
    runs, end = [], len(lengths)
    while end > 0:
        runs.append((cut[end], end))
        end = cut[end]
    return runs[::-1]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def read_metadata(model_dir: Path) -> ModelMeta:
    """ssa.json of a servable folder (its runtime files present); raises ModelFolderError."""
    for name in RUNTIME_FILES:
        if not (model_dir / name).is_file():
            raise ModelFolderError(f"{model_dir}: {name} is missing")
    try:
        return ModelMeta.read(model_dir)
    except ModelMetaError as exc:
        raise ModelFolderError(str(exc)) from exc


class Predictor:
    """One loaded model: tokenizer + ONNX Runtime session."""

    def __init__(self, model_dir: Path, session: ort.InferenceSession, tokenizer: Tokenizer,
                 meta: ModelMeta) -> None:
        self.model_dir = model_dir
        self.session = session
        self.tokenizer = tokenizer
        self.meta = meta
        self.model_id: str = meta.model_id
        self.version: str = meta.version
        self.labels: tuple[str, ...] = meta.labels
        self.task: str = meta.task
        self.method: str = meta.method
        self.max_length: int = meta.max_length
        self.pair: bool = meta.pair
        self.provider: str = session.get_providers()[0]
        self.input_names = [i.name for i in session.get_inputs()]
        self.pad_id = meta.pad_token_id

    @classmethod
    def load(cls, model_dir: Path, *, provider: ProviderChoice = "auto",
             intra_op_threads: int | None = None, allow_spinning: bool = True) -> Predictor:
        """allow_spinning=False: idle intra-op threads sleep instead of busy-waiting, which leaves the CPU to the
        other threads of a server (event loop, tokenization) and copes better with a shared machine."""
        model_dir = Path(model_dir)
        meta = read_metadata(model_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        if not allow_spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(model_dir / ONNX_FILE), options,
                                       providers=choose_providers(provider))
        tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        predictor = cls(model_dir, session, tokenizer, meta)
        log.info("loaded model %s (version %s) on %s", predictor.model_id, predictor.version, predictor.provider)
        return predictor

    # ---- tokenization ---------------------------------------------------------------------------------
    def encode(self, items: Sequence[Item]) -> list[Encoding]:
        """Untruncated encodings (with special tokens) of texts or (text, text_pair) pairs."""
        batch = [tuple(item) if isinstance(item, (tuple, list)) else item for item in items]
        return self.tokenizer.encode_batch(batch)

    def token_count(self, item: Item) -> int:
        return len(self.encode([item])[0].ids)

    def _truncate(self, items: Sequence[Item], encodings: list[Encoding], truncate: bool) -> list[bool]:
        """Cut over-long encodings to max_length in place; returns which were cut."""
        cut = []
        for index, encoding in enumerate(encodings):
            too_long = len(encoding.ids) > self.max_length
            if too_long and not truncate:
                raise InputTooLong(index, len(encoding.ids), self.max_length)
            cut.append(too_long)
        if any(cut):
            self.tokenizer.enable_truncation(self.max_length)
            try:
                redo = self.encode([items[i] for i, c in enumerate(cut) if c])
            finally:
                self.tokenizer.no_truncation()
            for i, encoding in zip([i for i, c in enumerate(cut) if c], redo, strict=True):
                encodings[i] = encoding
        return cut

    # ---- inference ----------------------------------------------------------------------------------
    def run(self, encodings: Sequence[Encoding]) -> dict[str, np.ndarray]:
        """One padded batch through the session: logits [B, C], importance [B, T], attention [B, T]."""
        length = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros((len(encodings), length), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        outputs = self.session.run(["logits", "importance", "attention"],
                                   {name: feeds[name] for name in self.input_names})
        return dict(zip(("logits", "importance", "attention"), outputs, strict=True))

    def predict(self, items: Sequence[Item], *, truncate: bool = True, return_tokens: bool = True,
                return_words: bool = True, batch_size: int = 64) -> list[Prediction]:
        """Predictions in input order; inputs are length-sorted and cut into runs of at most `batch_size` where
        padding would cost more than an extra run (see length_buckets)."""
        if not items:
            return []
        encodings = self.encode(items)
        truncated = self._truncate(items, encodings, truncate)
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids))
        lengths = [len(encodings[i].ids) for i in order]
        overhead = RUN_OVERHEAD_TOKENS.get(self.provider, GPU_RUN_OVERHEAD_TOKENS)
        results: list[Prediction | None] = [None] * len(items)
        for start, end in length_buckets(lengths, batch_size, overhead):
            chunk = order[start:end]
            out = self.run([encodings[i] for i in chunk])
            for row, index in enumerate(chunk):
                results[index] = self._prediction(items[index], encodings[index], out, row, truncated[index],
                                                  return_tokens, return_words)
        return results  # type: ignore[return-value]

    def _prediction(self, item: Item, encoding: Encoding, out: dict[str, np.ndarray], row: int,
                    truncated: bool, return_tokens: bool, return_words: bool) -> Prediction:
        logits = out["logits"][row]
        if self.task == "regression":
            value = float(logits[0])
            label: str | float = value
            score, scores = value, {}
        else:
            probs = softmax(logits)
            best = int(probs.argmax())
            label, score = self.labels[best], float(probs[best])
            scores = {name: float(p) for name, p in zip(self.labels, probs, strict=True)}
        tokens = words = None
        if return_tokens or return_words:
            texts = (item, "") if isinstance(item, str) else (item[0], item[1])
            positions = token_positions(encoding.offsets, encoding.word_ids, encoding.sequence_ids)
            attention = out["attention"][row] if self.method in ("layer", "hybrid") else None
            importance = out["importance"][row] if self.method != "baseline" else None
            spans = token_spans(positions, texts, attention, importance)
            tokens = spans if return_tokens else None
            words = word_spans(positions, spans, texts) if return_words else None
        return Prediction(label, score, scores, tokens, words, truncated)
