"""Model endpoints: list, inspect, deploy (atomic hot swap), delete, download (tar.gz)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import Response, StreamingResponse

from jobs.basemodels import base_model_name
from jobs.deploy import active_model, labels_check
from service.auth import API_KEY_HEADER, DownloadsKeyDep, ReadKeyDep, WriteKeyDep
from service.deps import DownloadLimiterDep, ManagerDep, SettingsDep, StoreDep
from service.errors import ApiError, error_responses
from service.http.ratelimit import client_id
from service.schemas.models import DeployRequest, DeployResponse, ModelList, ModelOut, VariantOut
from ssa_core.runtime.artifacts import ID_MAX_LENGTH, SAFE_ID_PATTERN, ArtifactStore, ModelInfo
from ssa_core.runtime.modelmeta import read_card

router = APIRouter(prefix="/models", tags=["models"])

ModelId = Annotated[str, Path(pattern=SAFE_ID_PATTERN, max_length=ID_MAX_LENGTH, description="A model id in the store",
                              examples=["sentiment-minilm"])]


def model_out(info: ModelInfo, active: str | None, served: str | None, with_card: bool = False,
              allowed_base_models: Iterable[str] = (), disk_bytes: int | None = None) -> ModelOut:
    """What readers see of a model: no server path (the folder is left out, the base model shown by its name, in
    the card too)."""
    data = info.to_dict()
    data.pop("path")
    data["ssa"] = info.meta.ssa_settings
    data["base_model"] = base_model_name(info.base_model, allowed_base_models)
    data["variants"] = [VariantOut.model_validate({"name": v.name, **v.to_dict()}) for v in info.meta.variants]
    card = read_card(info.path) if with_card else None
    if card is not None:
        if info.base_model and data["base_model"] != info.base_model:  # the card names the folder or its path
            card = card.replace(info.base_model, str(data["base_model"]))
            card = card.replace(f"`{PurePath(info.base_model).name}`", f"`{data['base_model']}`")
        data["card"] = card
    return ModelOut(**data, active=info.model_id == active, loaded=info.model_id == served, disk_bytes=disk_bytes)


def disk_use(store: ArtifactStore, infos: list[ModelInfo]) -> dict[str, int]:
    """Bytes of each model's folder."""
    return {info.model_id: store.model_bytes(info.model_id) for info in infos}


def served_id(manager: ManagerDep) -> str | None:
    return manager.current.info.model_id if manager.current else None


@router.get("", response_model=ModelList, responses=error_responses(401))
async def list_models(store: StoreDep, manager: ManagerDep, settings: SettingsDep, _: ReadKeyDep) -> ModelList:
    """Every model in the store, newest first, with its dev metrics and whether it is active / being served."""
    active = store.active_model_id()
    allowed = settings.allowed_base_models
    infos = store.list_models()
    sizes = await asyncio.to_thread(disk_use, store, infos)
    models = [model_out(info, active, served_id(manager), allowed_base_models=allowed,
                        disk_bytes=sizes.get(info.model_id)) for info in infos]
    return ModelList(active=active, models=models)


@router.get("/{model_id}", response_model=ModelOut, responses=error_responses(401, 404, 422))
async def get_model(model_id: ModelId, store: StoreDep, manager: ManagerDep, settings: SettingsDep,
                    _: ReadKeyDep) -> ModelOut:
    """One model: its ssa.json fields, SSA settings, metrics.json and model card."""
    info = store.get_model(model_id)
    size = await asyncio.to_thread(store.model_bytes, model_id)
    return model_out(info, store.active_model_id(), served_id(manager), with_card=True,
                     allowed_base_models=settings.allowed_base_models, disk_bytes=size)


@router.delete("/{model_id}", status_code=204, response_class=Response,
               responses=error_responses(401, 404, 409, 422))
async def delete_model(model_id: ModelId, manager: ManagerDep, _: WriteKeyDep) -> Response:
    """Remove a published model from the store (its folder, in one step: listings never show half of it). The
    active model (active.json) and the one being served are refused with 409 `model_in_use`: deploy another model
    first. Jobs that made the model keep their records."""
    await manager.remove(model_id)
    return Response(status_code=204)


@router.post("/{model_id}/deploy", response_model=DeployResponse,
             responses=error_responses(400, 401, 404, 409, 422))
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
    loaded, previous = await manager.deploy(model_id)  # ModelLoadFailed: our own message, ONNX Runtime's is logged
    return DeployResponse(model_id=model_id, version=loaded.info.version,
                          previous=previous.info.model_id if previous else None,
                          provider=loaded.predictor.provider, load_seconds=round(loaded.load_seconds, 3),
                          forced=check.outcome == "failed")


@router.get("/{model_id}/download", response_class=StreamingResponse, responses={
    200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "tar.gz of the model folder (entries under <model_id>/)"},
    **error_responses(401, 404, 422, 429)})
async def download_model(model_id: ModelId, store: StoreDep, limiter: DownloadLimiterDep, request: Request,
                         _: DownloadsKeyDep) -> StreamingResponse:
    """The model folder (ONNX, weights, tokenizer, ssa.json, metrics, card) as a streamed tar.gz. At most
    SSA_DOWNLOADS_PER_MINUTE downloads start per API key (or client address) per minute: 429 + Retry-After."""
    store.get_model(model_id)  # 404 / 422 do not count against the limit
    limiter.take(client_id(request.headers.get(API_KEY_HEADER), request.client.host if request.client else None))
    chunks = store.archive_model(model_id)
    headers = {"Content-Disposition": f'attachment; filename="{model_id}.tar.gz"'}
    return StreamingResponse(chunks, media_type="application/gzip", headers=headers)
