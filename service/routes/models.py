"""Model endpoints: list, inspect, deploy (atomic hot swap), download (tar.gz)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path
from fastapi.responses import StreamingResponse

from jobs.deploy import active_model, labels_check, public_reason
from service.deps import ManagerDep, ReadKeyDep, StoreDep, WriteKeyDep
from service.errors import ApiError, error_responses
from service.schemas import DeployRequest, DeployResponse, ModelList, ModelOut
from ssa_core.artifacts import ID_MAX_LENGTH, SAFE_ID_PATTERN, ModelInfo
from ssa_core.modelmeta import CARD_FILE

router = APIRouter(prefix="/models", tags=["models"])

ModelId = Annotated[str, Path(pattern=SAFE_ID_PATTERN, max_length=ID_MAX_LENGTH, description="A model id in the store",
                              examples=["sentiment-minilm"])]


def model_out(info: ModelInfo, active: str | None, served: str | None, with_card: bool = False) -> ModelOut:
    data = info.to_dict()
    data.pop("path")
    data["ssa"] = info.meta.ssa_settings
    card = info.path / CARD_FILE
    if with_card and card.is_file():
        data["card"] = card.read_text(encoding="utf-8", errors="replace")
    return ModelOut(**data, active=info.model_id == active, loaded=info.model_id == served)


def served_id(manager: ManagerDep) -> str | None:
    return manager.current.info.model_id if manager.current else None


@router.get("", response_model=ModelList, responses=error_responses(401))
async def list_models(store: StoreDep, manager: ManagerDep, _: ReadKeyDep) -> ModelList:
    """Every model in the store, newest first, with its dev metrics and whether it is active / being served."""
    active = store.active_model_id()
    models = [model_out(info, active, served_id(manager)) for info in store.list_models()]
    return ModelList(active=active, models=models)


@router.get("/{model_id}", response_model=ModelOut, responses=error_responses(401, 404, 422))
async def get_model(model_id: ModelId, store: StoreDep, manager: ManagerDep, _: ReadKeyDep) -> ModelOut:
    """One model: its ssa.json fields, SSA settings, metrics.json and model card."""
    return model_out(store.get_model(model_id), store.active_model_id(), served_id(manager), with_card=True)


@router.post("/{model_id}/deploy", response_model=DeployResponse, responses=error_responses(401, 404, 409, 422))
async def deploy_model(model_id: ModelId, store: StoreDep, manager: ManagerDep, _: WriteKeyDep,
                       body: Annotated[DeployRequest | None, Body()] = None) -> DeployResponse:
    """Serve this model: the deploy gate's first check (task, label set and input kind equal the active model's:
    409 `model_mismatch` otherwise, unless `{"force": true}`), then load it and run the gate's smoke inference
    (422 `model_load_failed`), and only then record it in active.json (it survives a restart) and swap it in
    atomically. Requests in flight finish on the previous model; none fail."""
    info = store.get_model(model_id)  # 404 / 422 before any loading
    force = body is not None and body.force
    check = labels_check(info, active_model(store, besides=model_id))
    if check.outcome == "failed" and not force:
        raise ApiError(409, "model_mismatch", f"model {model_id!r} does not fit the active model: {check.detail}; "
                       'send {"force": true} to deploy it anyway', {"field": "force"})
    manager.forget_failure(model_id)
    try:
        loaded, previous = await manager.deploy(model_id)
    except Exception as exc:
        raise ApiError(422, "model_load_failed",
                       f"model {model_id!r} could not be loaded: {public_reason(exc, info.path)}",
                       {"field": "model_id"}) from exc
    return DeployResponse(model_id=model_id, version=loaded.info.version,
                          previous=previous.info.model_id if previous else None,
                          provider=loaded.predictor.provider, load_seconds=round(loaded.load_seconds, 3),
                          forced=check.outcome == "failed")


@router.get("/{model_id}/download", response_class=StreamingResponse, responses={
    200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "tar.gz of the model folder (entries under <model_id>/)"},
    **error_responses(401, 404, 422)})
async def download_model(model_id: ModelId, store: StoreDep, _: ReadKeyDep) -> StreamingResponse:
    """The model folder (ONNX, weights, tokenizer, ssa.json, metrics, card) as a streamed tar.gz."""
    chunks = store.archive_model(model_id)
    headers = {"Content-Disposition": f'attachment; filename="{model_id}.tar.gz"'}
    return StreamingResponse(chunks, media_type="application/gzip", headers=headers)
