"""The API-key checks: write endpoints take `WriteKeyDep`, read endpoints `ReadKeyDep` (enforced only when
SSA_READS_REQUIRE_KEY=true), the reads SSA_PRIVATE_READS may close `LabelsKeyDep`, `DownloadsKeyDep`, `LogsKeyDep`
(labels and downloads by default). Each reads the `X-API-Key` header and compares it in constant time with every
accepted key (SSA_API_KEY and SSA_API_KEYS, so that keys can be rotated without downtime). The dependencies are
`async def` on purpose: FastAPI runs plain `def` dependencies in a worker thread, a thread hop per dependency per
request. (The key kept in the store when SSA_API_KEY is unset: service.apikey.)"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader

from service.deps import SettingsDep
from service.errors import ApiError
from service.settings import PrivateRead, Settings

API_KEY_HEADER = "X-API-Key"
WRITE_SCHEME = "ApiKey"
READ_SCHEME = "ApiKeyReads"  # merged into ApiKey (or dropped) by service.openapi.document.custom_openapi

write_key_header = APIKeyHeader(name=API_KEY_HEADER, scheme_name=WRITE_SCHEME, auto_error=False,
                                description="API key (SSA_API_KEY) for write endpoints.")
read_key_header = APIKeyHeader(name=API_KEY_HEADER, scheme_name=READ_SCHEME, auto_error=False,
                               description="API key for read endpoints (when SSA_READS_REQUIRE_KEY=true).")


def key_matches(given: str, accepted: tuple[str, ...]) -> bool:
    """Whether `given` is one of the accepted keys: every key is compared (constant time each, no early exit), so the
    answer's timing says nothing of which key, or how much of one, matched."""
    # header values arrive decoded as latin-1: compare the raw bytes with each key's UTF-8 bytes
    raw = given.encode("latin-1", "replace")
    matched = False
    for key in accepted:
        matched |= hmac.compare_digest(raw, key.encode("utf-8"))
    return matched


def check_api_key(settings: Settings, given: str | None) -> None:
    """Raise 401 unless auth is disabled or `given` equals one of the configured keys (SSA_API_KEY, SSA_API_KEYS)."""
    if settings.auth_disabled:
        return
    accepted = settings.accepted_keys()
    if not accepted:
        raise ApiError(401, "unauthorized", "this endpoint needs an API key but none is configured on the server "
                       "(set SSA_API_KEY, or SSA_AUTH_DISABLED=true for local development)",
                       {"field": API_KEY_HEADER}, {"WWW-Authenticate": API_KEY_HEADER})
    if given is None or not key_matches(given, accepted):
        reason = "missing" if given is None else "wrong"
        raise ApiError(401, "unauthorized", f"{reason} {API_KEY_HEADER} header", {"field": API_KEY_HEADER},
                       {"WWW-Authenticate": API_KEY_HEADER})


async def require_write_key(settings: SettingsDep,
                      key: Annotated[str | None, Security(write_key_header)] = None) -> None:
    check_api_key(settings, key)


def check_read_key(settings: Settings, given: str | None) -> None:
    """The key check of an ordinary read: enforced only when SSA_READS_REQUIRE_KEY=true."""
    if settings.reads_require_key:
        check_api_key(settings, given)


async def require_read_key(settings: SettingsDep,
                     key: Annotated[str | None, Security(read_key_header)] = None) -> None:
    check_read_key(settings, key)


def private_scheme(kind: PrivateRead) -> str:
    """The OpenAPI scheme of a private read (merged into ApiKey, or dropped, by
    service.openapi.document.custom_openapi)."""
    return f"{READ_SCHEME}-{kind}"


def private_read_key(kind: PrivateRead) -> Callable[..., Awaitable[None]]:
    """The key check of a read that SSA_PRIVATE_READS may close (labels, downloads, logs)."""
    header = APIKeyHeader(name=API_KEY_HEADER, scheme_name=private_scheme(kind), auto_error=False,
                          description=f"API key for {kind} (when SSA_PRIVATE_READS lists it).")

    # the header is local to this closure: given as a default, not in the (string) annotation FastAPI resolves
    async def require(settings: SettingsDep, key: str | None = Security(header)) -> None:
        if settings.reads_require_key or kind in settings.private_reads:
            check_api_key(settings, key)

    return require


WriteKeyDep = Annotated[None, Depends(require_write_key)]
ReadKeyDep = Annotated[None, Depends(require_read_key)]
LabelsKeyDep = Annotated[None, Depends(private_read_key("labels"))]
DownloadsKeyDep = Annotated[None, Depends(private_read_key("downloads"))]
LogsKeyDep = Annotated[None, Depends(private_read_key("logs"))]
