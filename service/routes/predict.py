"""POST /predict: labels, scores and per-token / per-word SSA attention for texts or text pairs."""

# No `from __future__ import annotations` here: FastAPI must see the request model built in build_router.
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from service.deps import API_KEY_HEADER, ReadKeyDep, StateDep, check_read_key
from service.errors import ApiError, error_responses, invalid_field
from service.http.directroute import direct_route, json_body, validated_body
from service.inference.batcher import BatcherStopped, DeadlineExceeded, MicroBatcher, Options, QueueFull
from service.inference.manager import Loaded, ModelLoadFailed, ModelManager
from service.inference.occlusion import OcclusionBusy, OcclusionLane
from service.inference.request import check_kinds, parse_inputs
from service.metrics import ServiceMetrics
from service.schemas.models import PredictResponse, predict_request_model
from service.settings import Settings
from service.wiring import AppState, app_state
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.modelmeta import UnknownVariant
from ssa_core.runtime.predictor import InputTooLong, Item, Prediction, Span

DIGITS = 6
# How long an occlusion run waits for plain predictions to drain before it runs anyway (slowed, never starved).
PLAIN_FIRST_WAIT_S = 0.25


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def span_dict(span: Span) -> dict[str, Any]:
    out = {"text": span.text, "start": span.start, "end": span.end, "segment": span.segment,
           "attention": rounded(span.attention), "importance": rounded(span.importance)}
    if span.occlusion is not None:
        out["occlusion"] = rounded(span.occlusion)
    return out


def prediction_dict(p: Prediction) -> dict[str, Any]:
    label = round(p.label, DIGITS) if isinstance(p.label, float) else p.label
    return {"label": label, "score": round(p.score, DIGITS),
            "scores": {name: round(value, DIGITS) for name, value in p.scores.items()},
            "truncated": p.truncated, "explainer": p.explainer,
            "tokens": None if p.tokens is None else [span_dict(s) for s in p.tokens],
            "words": None if p.words is None else [span_dict(s) for s in p.words]}


def renderer(loaded: Loaded) -> Any:
    """Renders a response body from predictions (called in the inference thread, off the event loop)."""
    head = {"model_id": loaded.info.model_id, "model_version": loaded.info.version, "model_variant": loaded.variant}

    def render(predictions: list[Prediction]) -> bytes:
        return orjson.dumps({**head, "predictions": [prediction_dict(p) for p in predictions]})

    return render


async def served_model(manager: ModelManager, store: ArtifactStore, wanted: str | None) -> Loaded:
    """The deployed model, or the stored model the request names (loaded on first use, for comparisons)."""
    loaded = manager.current
    if loaded is None:
        raise ApiError(503, "not_ready", f"no model is being served: {manager.status}", None, {"Retry-After": "5"})
    if wanted is None or wanted == loaded.info.model_id:
        return loaded
    if not store.has_model(wanted):
        raise ApiError(404, "not_found", f"model {wanted!r} not found", {"field": "model"})
    try:
        return await manager.side_model(wanted)
    except ModelLoadFailed as exc:
        raise ApiError(422, "model_load_failed", str(exc), {"field": "model"}) from exc


def with_variant(loaded: Loaded, variant: str | None) -> Loaded:
    """The model answering with the variant the request names (none: the deployment's default); 422 when the
    model has no such variant."""
    if variant is None:
        return loaded
    try:
        return loaded.serving(variant)
    except UnknownVariant as exc:
        raise invalid_field("variant", str(exc)) from exc


async def run_occlusion(lane: OcclusionLane, batcher: MicroBatcher, metrics: ServiceMetrics, settings: Settings,
                        loaded: Loaded, items: list[Item], options: Options, single: bool) -> bytes:
    """Predictions with leave-one-word-out occlusion, in the occlusion lane (not the micro-batcher). Plain
    predictions go first: before each occlusion run the lane waits (at most PLAIN_FIRST_WAIT_S) until the
    micro-batcher has nothing queued or running."""
    predictor = loaded.predictor
    for index, item in enumerate(items):
        words = predictor.word_count(item)
        if words > settings.occlusion_max_words:
            raise invalid_field("inputs" if single else f"inputs[{index}]",
                                f"{words} words, more than the {settings.occlusion_max_words} that occlusion explains "
                                "per input (SSA_OCCLUSION_MAX_WORDS); use explain: attention for it")
    render = renderer(loaded)

    def work() -> bytes:
        return render(predictor.predict(items, truncate=options.truncate, return_tokens=options.return_tokens,
                                        return_words=options.return_words, batch_size=settings.bucket_size,
                                        explain="occlusion",
                                        before_occlusion_run=lambda: batcher.wait_until_idle(PLAIN_FIRST_WAIT_S)))

    try:
        return await lane.run(work)
    except OcclusionBusy as exc:
        metrics.rejected.labels("occlusion_busy").inc()
        raise ApiError(429, "occlusion_busy", str(exc), None, {"Retry-After": str(exc.retry_after_s)}) from exc
    except InputTooLong as exc:
        raise too_long(exc, single) from exc


def too_long(exc: InputTooLong, single: bool) -> ApiError:
    return invalid_field("inputs" if single else f"inputs[{exc.index}]",
                         f"{exc.length} tokens, more than the model's maximum of {exc.max_length} "
                         "(send truncate: true to cut it)")


async def run_batch(batcher: MicroBatcher, metrics: ServiceMetrics, settings: Settings, loaded: Loaded,
                    items: list[Item], options: Options, single: bool) -> bytes:
    try:
        body: bytes = await batcher.submit(loaded.predictor, items, options, renderer(loaded),
                                           settings.request_timeout_s)
        return body
    except QueueFull as exc:
        metrics.rejected.labels("queue_full").inc()
        raise ApiError(429, "queue_full", str(exc), None, {"Retry-After": str(exc.retry_after_s)}) from exc
    except DeadlineExceeded as exc:
        metrics.rejected.labels("timeout").inc()
        raise ApiError(504, "timeout", f"the prediction took too long: {exc}") from exc
    except InputTooLong as exc:
        raise too_long(exc, single) from exc
    except BatcherStopped as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc


async def answer(body: Any, state: AppState) -> bytes:
    """The response body (JSON) to a validated PredictRequest; ApiError for what the request cannot get."""
    settings = state.settings
    loaded = with_variant(await served_model(state.manager, state.store, body.model), body.variant)
    single = isinstance(body.inputs, str)
    items = parse_inputs(body.inputs, max_inputs=settings.max_inputs, max_chars=settings.max_chars)
    check_kinds(items, single, loaded.predictor.pair, loaded.info.model_id)
    options = Options(body.truncate, body.return_tokens, body.return_words)
    if body.explain == "occlusion":
        return await run_occlusion(state.occlusion, state.batcher, state.metrics, settings, loaded, items, options,
                                   single)
    return await run_batch(state.batcher, state.metrics, settings, loaded, items, options, single)


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
