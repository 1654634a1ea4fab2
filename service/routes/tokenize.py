"""POST /tokenize: the served model's tokens with character offsets (text-embeddings-inference's /tokenize)."""

# No `from __future__ import annotations` here: FastAPI must see the request model built in build_router.
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from tokenizers import Encoding, Tokenizer

from service.auth import ReadKeyDep
from service.deps import ManagerDep, StoreDep
from service.errors import error_responses
from service.inference.predict import served_model
from service.inference.request import check_kinds
from service.schemas.info import TokenOut, tokenize_request_model
from service.settings import Settings
from ssa_core.runtime.modelmeta import TOKENIZER_FILE
from ssa_core.runtime.predictor import Item


@lru_cache(maxsize=4)
def tokenizer_of(model_dir: Path, version: str) -> Tokenizer:
    """A tokenizer of its own per model version: the predictor's turns truncation on and off while it runs."""
    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokens_of(encoding: Encoding, add_special_tokens: bool) -> list[TokenOut]:
    out = []
    for index, token_id in enumerate(encoding.ids):
        special = bool(encoding.special_tokens_mask[index])
        if special and not add_special_tokens:
            continue
        start, stop = encoding.offsets[index]
        segment = encoding.sequence_ids[index]
        out.append(TokenOut(id=token_id, text=encoding.tokens[index], special=special,
                            start=None if special else start, stop=None if special else stop,
                            segment=segment if segment is not None else 0))
    return out


def build_router(settings: Settings) -> APIRouter:
    """The tokenize router; its request schema carries this deployment's limits."""
    router = APIRouter(tags=["predict"])
    TokenizeRequest: Any = tokenize_request_model(settings.max_inputs, settings.max_chars)

    @router.post("/tokenize", response_model=list[list[TokenOut]],
                 responses=error_responses(400, 401, 413, 422, 503))
    async def tokenize(body: TokenizeRequest, manager: ManagerDep, store: StoreDep,
                       _: ReadKeyDep) -> list[list[TokenOut]]:
        """The deployed model's tokens of each input, untruncated: id, token text, whether it is special, and its
        character span [start, stop) into the text of its segment (0: text, 1: text_pair). One list per input."""
        loaded = await served_model(manager, store, None)
        items: list[Item] = body.inputs.items()
        check_kinds(items, body.inputs.single, loaded.predictor.pair, loaded.info.model_id)
        tokenizer = tokenizer_of(loaded.info.path, loaded.info.version)
        encodings = tokenizer.encode_batch([tuple(i) if isinstance(i, tuple) else i for i in items])
        return [tokens_of(e, body.add_special_tokens) for e in encodings]

    return router
