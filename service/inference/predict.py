"""One POST /predict request, from its validated body to the response bytes: the model that answers (the deployed
one, or a stored one the request names, in the variant it names), the inputs checked against it, then the
micro-batcher (or, with "explain": "occlusion", the occlusion lane), whose inference thread renders the response
(service.inference.response). What the request cannot get is raised as a domain error (service.errormap maps
it)."""

from __future__ import annotations

from collections.abc import Callable

from service.errors import ApiError, InvalidField
from service.inference.batcher import DeadlineExceeded, MicroBatcher, Options, QueueFull
from service.inference.manager import Loaded, ModelManager
from service.inference.occlusion import OcclusionBusy, OcclusionLane
from service.inference.request import Inputs, PredictRequest, check_kinds
from service.inference.response import renderer
from service.metrics import ServiceMetrics
from service.settings import Settings
from service.wiring import AppState
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.predictor import InputTooLong, Item, Prediction

# How long an occlusion run waits for plain predictions to drain before it runs anyway (slowed, never starved).
PLAIN_FIRST_WAIT_S = 0.25


def render_for(loaded: Loaded) -> Callable[[list[Prediction]], bytes]:
    """The renderer of `loaded`'s responses (its id, version and variant head every one)."""
    return renderer(loaded.info.model_id, loaded.info.version, loaded.variant)


async def served_model(manager: ModelManager, store: ArtifactStore, wanted: str | None) -> Loaded:
    """The deployed model, or the stored model the request names (loaded on first use, for comparisons)."""
    loaded = manager.current
    if loaded is None:
        raise ApiError(503, "not_ready", f"no model is being served: {manager.status}", None, {"Retry-After": "5"})
    if wanted is None or wanted == loaded.info.model_id:
        return loaded
    if not store.has_model(wanted):
        raise ApiError(404, "not_found", f"model {wanted!r} not found", {"field": "model"})
    return await manager.side_model(wanted)  # ModelLoadFailed naming the field "model"


def with_variant(loaded: Loaded, variant: str | None) -> Loaded:
    """The model answering with the variant the request names (none: the deployment's default); UnknownVariant
    when the model has no such variant."""
    return loaded if variant is None else loaded.serving(variant)


async def run_occlusion(lane: OcclusionLane, batcher: MicroBatcher, metrics: ServiceMetrics, settings: Settings,
                        loaded: Loaded, inputs: Inputs, items: list[Item], options: Options) -> bytes:
    """Predictions with leave-one-word-out occlusion, in the occlusion lane (not the micro-batcher). Plain
    predictions go first: before each occlusion run the lane waits (at most PLAIN_FIRST_WAIT_S) until the
    micro-batcher has nothing queued or running."""
    predictor = loaded.predictor
    for index, item in enumerate(items):
        words = predictor.word_count(item)
        if words > settings.occlusion_max_words:
            raise InvalidField(inputs.field(index),
                                f"{words} words, more than the {settings.occlusion_max_words} that occlusion explains "
                                "per input (SSA_OCCLUSION_MAX_WORDS); use explain: attention for it")
    render = render_for(loaded)

    def work() -> bytes:
        return render(predictor.predict(items, truncate=options.truncate, return_tokens=options.return_tokens,
                                        return_words=options.return_words, batch_size=settings.bucket_size,
                                        explain="occlusion",
                                        before_occlusion_run=lambda: batcher.wait_until_idle(PLAIN_FIRST_WAIT_S)))

    try:
        return await lane.run(work)
    except OcclusionBusy:
        metrics.rejected.labels("occlusion_busy").inc()
        raise
    except InputTooLong as exc:
        raise too_long(exc, inputs) from exc


def too_long(exc: InputTooLong, inputs: Inputs) -> InvalidField:
    """The input the runtime found too long, named as the request names it (`inputs`, or `inputs[i]` of a list)."""
    return InvalidField(inputs.field(exc.index),
                        f"{exc.length} tokens, more than the model's maximum of {exc.max_length} "
                        "(send truncate: true to cut it)")


async def run_batch(batcher: MicroBatcher, metrics: ServiceMetrics, settings: Settings, loaded: Loaded,
                    inputs: Inputs, items: list[Item], options: Options) -> bytes:
    try:
        body: bytes = await batcher.submit(loaded.predictor, items, options, render_for(loaded),
                                           settings.request_timeout_s)
        return body
    except QueueFull:
        metrics.rejected.labels("queue_full").inc()
        raise
    except DeadlineExceeded:
        metrics.rejected.labels("timeout").inc()
        raise
    except InputTooLong as exc:
        raise too_long(exc, inputs) from exc


async def answer(body: PredictRequest, state: AppState) -> bytes:
    """The response body (a PredictResponse, JSON) to a validated PredictRequest; ApiError or a domain error
    (service.errormap) for what the request cannot get."""
    settings = state.settings
    loaded = with_variant(await served_model(state.manager, state.store, body.model), body.variant)
    items = body.inputs.items()
    check_kinds(items, body.inputs.single, loaded.predictor.pair, loaded.info.model_id)
    options = Options(body.truncate, body.return_tokens, body.return_words)
    if body.explain == "occlusion":
        return await run_occlusion(state.occlusion, state.batcher, state.metrics, settings, loaded, body.inputs, items,
                                   options)
    return await run_batch(state.batcher, state.metrics, settings, loaded, body.inputs, items, options)
