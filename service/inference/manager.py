"""The model being served: load + warm up off the event loop, swap one reference, follow active.json.

A deploy loads and warms up the new Predictor completely before `current` changes, so requests never see a
half-loaded model; requests already admitted keep their reference to the old Predictor (see
service.inference.batcher)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from jobs.deploy import NotServable, smoke_test
from service.inference.loaderrors import load_failure
from service.metrics import ServiceMetrics
from service.settings import Settings
from ssa_core.runtime.artifacts import ArtifactStore, ModelInfo
from ssa_core.runtime.modelmeta import DEFAULT_VARIANT, UnknownVariant
from ssa_core.runtime.predictor import Predictor

log = logging.getLogger("ssa.serving")


class ModelLoadFailed(RuntimeError):
    """A model could not be loaded or warmed up; the message is fit for clients (see service.inference.loaderrors).
    `field`: the request field that named the model (`model_id` of a deploy, `model` of a prediction)."""

    def __init__(self, message: str, field: str = "model_id") -> None:
        super().__init__(message)
        self.field = field


class ModelInUse(RuntimeError):
    """A model that may not be removed: the active one (active.json) or the one being served (`field`: the request
    field that named it)."""

    field = "model_id"


class WarmUpFailed(RuntimeError):
    """The warm-up inference of a freshly loaded model failed or produced non-finite scores."""


@dataclass(frozen=True)
class Loaded:
    """A loaded, warmed-up model: `predictor` runs its `variant`; `variants` holds every variant the folder lists
    (fp32 always), each loaded and warmed up, so a request may name one."""

    predictor: Predictor
    info: ModelInfo
    load_seconds: float
    variants: Mapping[str, Predictor] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return self.predictor.variant

    def serving(self, variant: str) -> Loaded:
        """The same model answering with `variant`; raises UnknownVariant (naming the ones it has)."""
        if variant == self.variant:
            return self
        if variant not in self.variants:
            raise UnknownVariant(f"model {self.info.model_id} has no {variant} variant (it has: "
                                 f"{', '.join(self.variants)})")
        return replace(self, predictor=self.variants[variant])


def warm_up(predictor: Predictor) -> None:
    """The deploy gate's smoke test (a short and a max-length inference, as the worker ran it before publishing);
    raises WarmUpFailed (with a path-free reason) unless it predicts finite scores."""
    try:
        smoke_test(predictor)
    except NotServable as exc:
        raise WarmUpFailed(f"model {predictor.model_id} cannot serve: {exc}") from exc


class ModelManager:
    """Holds the served model; deploys (hot swap) and follows the store's active pointer."""

    def __init__(self, store: ArtifactStore, settings: Settings, metrics: ServiceMetrics) -> None:
        self.store, self.settings, self.metrics = store, settings, metrics
        self.current: Loaded | None = None
        self.status = "no model yet"
        self._lock = asyncio.Lock()
        self._failed: dict[str, str] = {}
        self._poller: asyncio.Task[None] | None = None
        self._side: OrderedDict[str, Loaded] = OrderedDict()
        self._side_lock = asyncio.Lock()

    # ---- loading ----------------------------------------------------------------------------------------
    def _load(self, model_id: str, *, deployed: bool = True) -> Loaded:
        """Every variant of the model, loaded and warmed up (the deploy gate's smoke test runs on each); answering
        with the `variant` setting's where the model has it, else fp32. Only a deployed model gets overlap sessions
        (SSA_OVERLAP_THREADS): side models answer the occasional comparison, and a second session each would double
        their memory."""
        start = time.perf_counter()
        info = self.store.get_model(model_id)
        variants: dict[str, Predictor] = {}
        for variant in info.meta.variants:
            predictor = Predictor.load(info.path, provider=self.settings.provider,
                                       intra_op_threads=self.settings.intra_op_threads,
                                       allow_spinning=self.settings.ort_spinning, variant=variant.name,
                                       overlap_threads=self.settings.overlap_threads if deployed else 0)
            warm_up(predictor)
            variants[variant.name] = predictor
        default = variants.get(self.settings.onnx_variant, variants[DEFAULT_VARIANT])
        return Loaded(default, info, time.perf_counter() - start, variants)

    async def side_model(self, model_id: str) -> Loaded:
        """A stored model other than the deployed one, for requests that name it (comparing models): loaded and
        warmed up on first use; the SSA_SIDE_MODELS most recently used stay loaded."""
        async with self._side_lock:
            loaded = self._side.pop(model_id, None)
            if loaded is None:
                try:
                    loaded = await asyncio.to_thread(self._load, model_id, deployed=False)
                except Exception as exc:
                    raise ModelLoadFailed(load_failure(exc, model_id), field="model") from exc
                log.info("loaded model %s for side-by-side requests", model_id)
            self._side[model_id] = loaded
            while len(self._side) > self.settings.side_models:
                self._side.popitem(last=False)
            return loaded

    async def deploy(self, model_id: str, *, persist: bool = True) -> tuple[Loaded, Loaded | None]:
        """Load + warm up `model_id`, record it in active.json (when `persist`), then swap. Returns (new, old)."""
        async with self._lock:
            return await self._deploy_locked(model_id, persist)

    async def _deploy_locked(self, model_id: str, persist: bool) -> tuple[Loaded, Loaded | None]:
        self.status = f"loading model {model_id}" if self.current is None else self.status
        try:
            loaded = await asyncio.to_thread(self._load, model_id)
            if persist:
                await asyncio.to_thread(self.store.set_active_model, model_id)
        except Exception as exc:
            self.metrics.deploys.labels("failed").inc()
            self._failed[model_id] = load_failure(exc, model_id)
            if self.current is None:
                self.status = self._failed[model_id]
            raise ModelLoadFailed(self._failed[model_id]) from exc
        previous, self.current = self.current, loaded
        self._failed.pop(model_id, None)
        self.status = "ready"
        self.metrics.deploys.labels("ok").inc()
        self.metrics.set_model(model_id, loaded.info.version, loaded.predictor.provider)
        log.info("serving model %s (version %s, %.2f s to load)", model_id, loaded.info.version, loaded.load_seconds)
        return loaded, previous

    # ---- removing a model ---------------------------------------------------------------------------------
    async def remove(self, model_id: str) -> None:
        """Delete a stored model that is neither active nor served; raises ModelInUse, InvalidId, NotFound.

        Under the deploy lock, so no deploy of this process runs meanwhile. The folder is first renamed out of
        models/ (GET /models never sees half of it), then active.json is read again: if another process (the
        worker's deploy gate) made the model active in between, it is put back and the removal refused."""
        async with self._lock:
            self._refuse_if_in_use(model_id, await asyncio.to_thread(self.store.active_model_id))
            withdrawn = await asyncio.to_thread(self.store.withdraw_model, model_id)
            if await asyncio.to_thread(self.store.active_model_id) == model_id:
                await asyncio.to_thread(self.store.restore_model, withdrawn, model_id)
                raise ModelInUse(f"model {model_id!r} was made active while it was being removed; it is kept")
            async with self._side_lock:
                self._side.pop(model_id, None)
            self._failed.pop(model_id, None)
        await asyncio.to_thread(self.store.discard, withdrawn)
        log.info("removed model %s", model_id)

    def _refuse_if_in_use(self, model_id: str, active: str | None) -> None:
        if model_id == active:
            raise ModelInUse(f"model {model_id!r} is the active model (active.json): deploy another model first")
        if self.current is not None and self.current.info.model_id == model_id:
            raise ModelInUse(f"model {model_id!r} is being served: deploy another model first")

    # ---- following active.json --------------------------------------------------------------------------
    async def sync_with_store(self) -> None:
        """Load the store's active model when it differs from the served one (skips ids that failed before)."""
        async with self._lock:
            active = await asyncio.to_thread(self.store.active_model_id)
            served = self.current.info.model_id if self.current else None
            if active is None or active == served or active in self._failed:
                return
            with contextlib.suppress(Exception):
                await self._deploy_locked(active, persist=False)
            if active in self._failed:
                log.error("could not load the active model %s: %s", active, self._failed[active])

    async def _poll(self) -> None:
        while True:
            try:
                await self.sync_with_store()
            except Exception:
                log.exception("checking the active model failed")
            await asyncio.sleep(self.settings.active_poll_s)

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="ssa-active-model")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def forget_failure(self, model_id: str) -> None:
        self._failed.pop(model_id, None)
