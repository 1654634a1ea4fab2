"""Torch-free inference: ONNX Runtime + tokenizers + NumPy. Returns labels, scores and per-token SSA attention
with character spans into the original text. This module (and what it imports) must never import torch."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Encoding, Tokenizer

try:
    import onnxruntime as ort
except ImportError as exc:  # ONNX Runtime is an extra, so that exactly one build (CPU or GPU) is installed
    raise ImportError("ssa-service needs ONNX Runtime: pip install 'ssa-service[cpu]' (or 'ssa-service[gpu]' on an "
                      "NVIDIA GPU host)") from exc

from ssa_core.data.textspans import Span, token_positions, token_spans, word_groups, word_spans
from ssa_core.runtime.modelmeta import (
    ATTENTION,
    ATTENTION_MASK,
    IMPORTANCE,
    INPUT_IDS,
    LOGITS,
    ONNX_OUTPUTS,
    RUNTIME_FILES,
    TOKEN_TYPE_IDS,
    TOKENIZER_FILE,
    ModelMeta,
    ModelMetaError,
)
from ssa_core.vocabulary import DEFAULT_ONNX_VARIANT, Explainer, Provider

log = logging.getLogger("ssa.runtime")

Item = str | tuple[str, str]
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
    explainer: Explainer = "attention"


class TokenIds(Protocol):
    """What a model run needs of an input: its wordpiece ids and token types (a tokenizers Encoding has both)."""

    @property
    def ids(self) -> list[int]: ...

    @property
    def type_ids(self) -> list[int]: ...


@dataclass(frozen=True)
class Ids:
    """An input with some wordpieces deleted (an occlusion copy)."""

    ids: list[int]
    type_ids: list[int]


def words_of(encoding: Encoding) -> list[list[int]]:
    """Sequence positions of each word's wordpieces (per segment), in order."""
    return word_groups(token_positions(encoding.offsets, encoding.word_ids, encoding.sequence_ids))


def deleted(encoding: Encoding, positions: Sequence[int]) -> Ids:
    gone = set(positions)
    keep = [k for k in range(len(encoding.ids)) if k not in gone]
    return Ids([encoding.ids[k] for k in keep], [encoding.type_ids[k] for k in keep])


def cuda_usable() -> bool:
    """CUDA EP is offered by this onnxruntime build and a CUDA driver is loadable."""
    if CUDA not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def choose_providers(choice: Provider) -> list[str]:
    """Execution providers to ask for; logs one clear line when CUDA was wanted but cannot be used."""
    if choice == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    level = logging.WARNING if choice == "cuda" else logging.INFO
    log.log(level, "CUDA execution provider unavailable (no GPU build or no driver): using the CPU provider")
    return [CPU]


OUTPUTS = ONNX_OUTPUTS  # the order session runs return them in
SessionRun = Callable[[ort.InferenceSession, dict[str, np.ndarray]], list[np.ndarray]]


def plain_run(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """session.run: ONNX Runtime copies the NumPy inputs in and the outputs out (the CPU provider's path)."""
    return list(session.run(list(OUTPUTS), feeds))


def bound_run(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """IO binding: the NumPy inputs are bound as they are and copied to the device once, the outputs are bound to
    CPU memory and copied back once, with no per-run feed/fetch matching (the CUDA provider's path)."""
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(value))
    for name in OUTPUTS:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return list(binding.copy_outputs_to_cpu())


def session_runner(provider: str) -> SessionRun:
    """How a session with `provider` first is run: with IO binding on CUDA, plainly elsewhere."""
    return bound_run if provider == CUDA else plain_run


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


def as_tokenizer_input(item: Item) -> str | tuple[str, str]:
    """A text, or a (text, text_pair) pair as the tokenizer takes it."""
    return (item[0], item[1]) if isinstance(item, (tuple, list)) else item


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


def session_options(threads: int | None, allow_spinning: bool) -> ort.SessionOptions:
    """All graph optimizations; `threads` intra-op threads (None: one per core). allow_spinning: between the
    operators of a run, idle intra-op threads busy-wait for the next one instead of sleeping (a run waits less for
    its threads); they stop when the run returns, so an idle session takes no CPU between runs."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if allow_spinning:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    else:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Predictor:
    """One loaded model: tokenizer + ONNX Runtime session (and, optionally, an overlap session: see `load`)."""

    def __init__(self, model_dir: Path, session: ort.InferenceSession, tokenizer: Tokenizer,
                 meta: ModelMeta, variant: str = DEFAULT_ONNX_VARIANT,
                 overlap_session: ort.InferenceSession | None = None) -> None:
        self.model_dir = model_dir
        self.variant = variant
        self.session = session
        self.overlap_session = overlap_session
        self._in_flight = 0  # predict calls running now, on any thread
        self._in_flight_lock = threading.Lock()
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
        self.run_session: SessionRun = session_runner(self.provider)
        self.input_names = [i.name for i in session.get_inputs()]
        self.pad_id = meta.pad_token_id
        # A second tokenizer that always truncates to max_length: predict() runs on several threads at once (the
        # service's inference workers, the occlusion lane), so the shared tokenizer's settings are never changed.
        self.truncating_tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.truncating_tokenizer.no_padding()
        self.truncating_tokenizer.enable_truncation(self.max_length)

    @classmethod
    def load(cls, model_dir: Path, *, provider: Provider = "auto", intra_op_threads: int | None = None,
             allow_spinning: bool = True, variant: str = DEFAULT_ONNX_VARIANT, onnx_file: str | None = None,
             overlap_threads: int | None = None) -> Predictor:
        """`variant` (the ONNX variant) picks the ONNX file among those ssa.json lists (fp32: model.onnx; int8 once
        quantized); `onnx_file` names another file of the folder instead (the int8 check runs a candidate before it
        is listed).
        Raises ModelFolderError for an ONNX variant the folder does not have.

        allow_spinning=False: idle intra-op threads sleep instead of busy-waiting, which leaves the CPU to the
        other threads of a server (event loop, tokenization) and copes better with a shared machine.

        overlap_threads (CPU only; fewer than intra_op_threads): a second session of the same file with that many
        intra-op threads, for runs made while other predict calls are in flight (the service's inference workers
        under load, the occlusion lane). A lone call still runs on the main session with all its threads (lowest
        latency); calls that overlap would otherwise ask one session for more threads than there are cores, and
        ONNX Runtime's parallel loops pay for that in CPU time (on 2 cores, runs of 8 sentences cost markedly more CPU
        on 2 threads than on 1). It costs the memory of a second session. With it, the main session's threads spin
        within a run whatever allow_spinning says (a lone call has the cores to itself, and its run waits less for its
        threads)."""
        model_dir = Path(model_dir)
        meta = read_metadata(model_dir)
        if onnx_file is None:
            try:
                onnx_file = meta.variant(variant).file
            except LookupError as exc:
                raise ModelFolderError(str(exc)) from exc
        if not (model_dir / onnx_file).is_file():
            raise ModelFolderError(f"{model_dir}: {onnx_file} is missing")
        path = str(model_dir / onnx_file)
        providers = choose_providers(provider)
        overlap = None
        if overlap_threads and providers[0] == CPU and overlap_threads < (intra_op_threads or os.cpu_count() or 1):
            overlap = ort.InferenceSession(path, session_options(overlap_threads, allow_spinning), providers=[CPU])
        # with an overlap session the main one only runs lone calls: its threads spin within a run, taking no core
        # from another call's run
        session = ort.InferenceSession(path, session_options(intra_op_threads, allow_spinning or overlap is not None),
                                       providers=providers)
        tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        predictor = cls(model_dir, session, tokenizer, meta, variant, overlap)
        log.info("loaded model %s (version %s, %s) on %s", predictor.model_id, predictor.version, variant,
                 predictor.provider)
        return predictor

    # ---- tokenization ---------------------------------------------------------------------------------
    def encode(self, items: Sequence[Item]) -> list[Encoding]:
        """Untruncated encodings (with special tokens) of texts or (text, text_pair) pairs."""
        return self.tokenizer.encode_batch([as_tokenizer_input(item) for item in items])

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
            redo = self.truncating_tokenizer.encode_batch([as_tokenizer_input(items[i])
                                                           for i, c in enumerate(cut) if c])
            for i, encoding in zip([i for i, c in enumerate(cut) if c], redo, strict=True):
                encodings[i] = encoding
        return cut

    # ---- inference ----------------------------------------------------------------------------------
    @contextmanager
    def overlapping(self) -> Iterator[None]:
        """Count the calling thread as one more predict call in flight: inside, runs use the overlap session (when
        there is one) as they do while another call is running. predict() holds one itself; the deploy gate's
        smoke test uses this to check the overlap session too."""
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def run(self, encodings: Sequence[TokenIds]) -> dict[str, np.ndarray]:
        """One padded batch through the session (the overlap session while other predict calls are in flight):
        logits [B, C], importance [B, T], attention [B, T]."""
        length = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros((len(encodings), length), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        feeds = {INPUT_IDS: ids, ATTENTION_MASK: mask, TOKEN_TYPE_IDS: types}
        session = self.overlap_session if self.overlap_session is not None and self._in_flight > 1 else self.session
        outputs = self.run_session(session, {name: feeds[name] for name in self.input_names})
        return dict(zip(OUTPUTS, outputs, strict=True))

    def run_buckets(self, inputs: Sequence[TokenIds], batch_size: int,
                    before_run: Callable[[], object] | None = None) -> list[dict[str, np.ndarray]]:
        """Every input through the session in length-sorted runs of at most `batch_size` (see length_buckets);
        one dict of [1, ...] output rows per input, in input order. `before_run` is called before each run."""
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i].ids))
        lengths = [len(inputs[i].ids) for i in order]
        overhead = RUN_OVERHEAD_TOKENS.get(self.provider, GPU_RUN_OVERHEAD_TOKENS)
        rows: list[dict[str, np.ndarray]] = [{}] * len(inputs)
        for start, end in length_buckets(lengths, batch_size, overhead):
            chunk = order[start:end]
            if before_run is not None:
                before_run()
            out = self.run([inputs[i] for i in chunk])
            for row, index in enumerate(chunk):
                rows[index] = {name: values[row : row + 1] for name, values in out.items()}
        return rows

    def word_count(self, item: Item) -> int:
        """Words of an (untruncated) input, as the occlusion explainer deletes them one at a time."""
        return len(words_of(self.encode([item])[0]))

    def predict(self, items: Sequence[Item], *, truncate: bool = True, return_tokens: bool = True,
                return_words: bool = True, batch_size: int = 64, explain: Explainer = "attention",
                occlusion_batch: int = 16, before_occlusion_run: Callable[[], object] | None = None,
                ) -> list[Prediction]:
        """Predictions in input order; inputs are length-sorted and cut into runs of at most `batch_size` where
        padding would cost more than an extra run (see length_buckets).

        explain="occlusion" adds leave-one-word-out occlusion to every token and word: each word deleted in a copy
        of its own, the copies run in batches of at most `occlusion_batch` (short runs, so that other callers of
        the same session get turns in between); `before_occlusion_run` is called before each of those runs (the
        service waits there while plain predictions are queued or running)."""
        if not items:
            return []
        with self.overlapping():  # the whole call counts: tokenizing and building spans keep a core busy too
            encodings = self.encode(items)
            truncated = self._truncate(items, encodings, truncate)
            rows = self.run_buckets(encodings, batch_size)
            occluded = (self.occlusion(encodings, rows, occlusion_batch, before_occlusion_run)
                        if explain == "occlusion" else None)
            return [self._prediction(items[i], encodings[i], rows[i], 0, truncated[i], return_tokens, return_words,
                                     None if occluded is None else occluded[i]) for i in range(len(items))]

    def _decision_score(self, logits: np.ndarray) -> np.ndarray:
        """[N, C] logits -> [N, C] what occlusion compares: class probabilities (the value, for regression)."""
        return logits if self.task == "regression" else softmax(logits)

    def occlusion(self, encodings: Sequence[Encoding], rows: Sequence[dict[str, np.ndarray]],
                  batch_size: int, before_run: Callable[[], object] | None = None) -> list[np.ndarray]:
        """Per input, a weight per sequence position: the drop of the predicted class's probability (regression:
        how far the value moves) when the position's word is deleted, shared evenly by the word's wordpieces."""
        copies: list[Ids] = []
        owners: list[tuple[int, list[int]]] = []
        for i, encoding in enumerate(encodings):
            for group in words_of(encoding):
                copies.append(deleted(encoding, group))
                owners.append((i, group))
        base = [self._decision_score(row[LOGITS])[0] for row in rows]
        weights = [np.zeros(len(e.ids), dtype=np.float64) for e in encodings]
        if not copies:
            return weights
        outcome = self.run_buckets(copies, batch_size, before_run)
        for (i, group), out in zip(owners, outcome, strict=True):
            after = self._decision_score(out[LOGITS])[0]
            if self.task == "regression":
                drop = abs(float(base[i][0] - after[0]))
            else:
                c = int(base[i].argmax())
                drop = float(base[i][c] - after[c])
            weights[i][group] = drop / len(group)
        return weights

    def _prediction(self, item: Item, encoding: Encoding, out: dict[str, np.ndarray], row: int,
                    truncated: bool, return_tokens: bool, return_words: bool,
                    occlusion: np.ndarray | None = None) -> Prediction:
        logits = out[LOGITS][row]
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
            positions = token_positions(encoding.offsets, encoding.word_ids, encoding.sequence_ids, texts)
            attention = out[ATTENTION][row] if self.method in ("layer", "hybrid") else None
            importance = out[IMPORTANCE][row] if self.method != "baseline" else None
            occluded = None if occlusion is None else occlusion.tolist()
            spans = token_spans(positions, texts, attention, importance, occluded)
            tokens = spans if return_tokens else None
            words = word_spans(positions, spans, texts) if return_words else None
        return Prediction(label, score, scores, tokens, words, truncated,
                          "attention" if occlusion is None else "occlusion")
