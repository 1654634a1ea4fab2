"""Job endpoints (training jobs through the worker queue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/jobs", tags=["jobs"])
