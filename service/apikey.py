"""The API key when SSA_API_KEY is unset: generated once and kept in the artifact store, so that
`docker compose up` needs no manual key step. The key is never printed, only where to read it."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from service.settings import Settings

KEY_FILE = "api-key"
log = logging.getLogger("ssa.service")


def load_or_create(home: Path) -> tuple[str, Path, bool]:
    """(key, its file, created now): reads `home`/api-key, or writes a new random key there (mode 0600)."""
    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise RuntimeError(f"{path} is empty: delete it to have a new key generated, or set SSA_API_KEY") from None
        return key, path, False
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, path, True


def how_to_read(path: Path, created: bool) -> str:
    """The log line: where the key is and how to read it (never the key itself)."""
    what = "generated an API key for writes and saved it" if created else "using the API key kept"
    return (f"SSA_API_KEY is not set: {what} in {path} (readable by this user only). Read it with "
            f"`docker compose exec api cat {path}` (without compose: `cat {path}`); "
            "set SSA_API_KEY to use your own key instead.")


def with_stored_key(settings: Settings) -> Settings:
    """`settings` unchanged when SSA_API_KEY or SSA_API_KEYS is set (non-empty) or auth is off; else with the stored
    key."""
    if settings.accepted_keys() or settings.auth_disabled:
        return settings
    key, path, created = load_or_create(settings.home)
    log.warning(how_to_read(path, created))
    return settings.model_copy(update={"api_key": SecretStr(key)})
