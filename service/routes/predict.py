"""POST /predict: labels, scores and per-token / per-word SSA attention for texts or text pairs."""

# No `from __future__ import annotations` here: FastAPI must see the request model built in build_router.
from typing import Any

from fastapi import APIRouter, Request, Response

from service.auth import API_KEY_HEADER, ReadKeyDep, check_read_key
from service.deps import StateDep
from service.errors import error_responses
from service.http.directroute import direct_route, json_body, validated_body
from service.inference.predict import answer
from service.inference.request import predict_request_model
from service.inference.response import PredictResponse
from service.settings import Settings
from service.wiring import app_state


def build_router(settings: Settings) -> APIRouter:
    """The predict router; its request schema carries this deployment's limits.

    FastAPI documents POST /predict from `predict` below; requests are answered by `handle`, which makes the same
    checks in the same order without FastAPI's per-request dependency solving (service.http.directroute)."""
    router = APIRouter(tags=["predict"])
    PredictRequest: Any = predict_request_model(settings.max_inputs, settings.max_chars)

    async def predict(body: PredictRequest, state: StateDep, _: ReadKeyDep) -> Response:
        """Classify one text, a list of texts, or [text, text_pair] pairs with the deployed model.

        Each prediction has the label, its probability, every class's probability and, unless turned off, the
        SSA attention and token importance of every wordpiece and word with character offsets into the input.
        Concurrent requests are grouped into batches (micro-batching). "variant": "int8" (or "fp16") answers with
        the model's int8 (fp16) variant where it has one. With "explain": "occlusion" every token and
        word also carries its leave-one-word-out occlusion score, computed in a lane of its own."""
        return Response(await answer(body, state), media_type="application/json")

    async def handle(request: Request) -> Response:
        """`predict` as FastAPI would run it: the JSON body parsed, then the read key, then the fields validated."""
        raw = await json_body(request)
        state = app_state(request.app)
        check_read_key(state.settings, request.headers.get(API_KEY_HEADER))
        return Response(await answer(validated_body(PredictRequest, raw), state), media_type="application/json")

    router.add_api_route("/predict", predict, methods=["POST"], response_model=PredictResponse,
                         responses=error_responses(400, 401, 404, 413, 422, 429, 500, 503, 504),
                         route_class_override=direct_route(handle))
    return router
