"""GET /info: the served model and this deployment's limits and build (text-embeddings-inference's /info)."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import ReadKeyDep
from service.buildinfo import build_info
from service.deps import ManagerDep, SettingsDep
from service.errors import error_responses
from service.schemas.info import Build, Info, Limits
from service.settings import Settings

router = APIRouter(tags=["health"])


def limits_of(settings: Settings) -> Limits:
    return Limits(max_client_batch_size=settings.max_inputs, max_input_chars=settings.max_chars,
                  max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes,
                  max_batch_size=settings.max_batch_size, max_queued_requests=settings.queue_size,
                  request_timeout_s=settings.request_timeout_s, occlusion_max_words=settings.occlusion_max_words)


@router.get("/info", response_model=Info, responses=error_responses(401))
async def info(manager: ManagerDep, settings: SettingsDep, _: ReadKeyDep) -> Info:
    """The served model (id, version, task, labels, max input length, provider), the request limits and the build.
    Answers before a model is loaded too (model fields null, `ready` false)."""
    loaded = manager.current
    p = loaded.predictor if loaded else None
    return Info(
        model_id=loaded.info.model_id if loaded else None, model_version=loaded.info.version if loaded else None,
        task=p.task if p else None, method=p.method if p else None, labels=list(p.labels) if p else None,
        pair=p.pair if p else None, max_input_length=p.max_length if p else None,
        provider=p.provider if p else None, ready=loaded is not None, limits=limits_of(settings),
        build=Build(**build_info()))
