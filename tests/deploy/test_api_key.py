"""No manual key step: without SSA_API_KEY `ssa serve` generates a key once, keeps it in the store (mode 0600) and
logs where to read it, never the key; a key that is set wins. (The compose test checks the same in a container.)"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from service.apikey import load_or_create, with_stored_key
from service.settings import Settings


def settings(home: Path, **values: object) -> Settings:
    return Settings(home=home, **values)  # type: ignore[arg-type]


def test_generated_once_kept_private_and_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "store"
    with caplog.at_level(logging.WARNING, logger="ssa.service"):
        first = with_stored_key(settings(home))
    key = first.api_key_value()
    assert key and len(key) == 64
    path = home / "api-key"
    assert path.read_text(encoding="utf-8").strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "docker compose exec api cat" in caplog.text and str(path) in caplog.text
    assert key not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ssa.service"):
        again = with_stored_key(settings(home))
    assert again.api_key_value() == key, "a restart keeps the key"
    assert "using the API key kept" in caplog.text and key not in caplog.text


@pytest.mark.parametrize("values", [{"api_key": "from-env"}, {"auth_disabled": True}], ids=["key-set", "auth-off"])
def test_a_set_key_or_disabled_auth_generates_nothing(tmp_path: Path, values: dict[str, object]) -> None:
    given = settings(tmp_path, **values)
    assert with_stored_key(given) is given
    assert not (tmp_path / "api-key").exists()


def test_an_empty_key_counts_as_unset(tmp_path: Path) -> None:
    """Compose passes SSA_API_KEY="" when .env has none: that must not become the key."""
    assert with_stored_key(settings(tmp_path, api_key="")).api_key_value()
    assert (tmp_path / "api-key").is_file()


def test_an_empty_key_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="is empty"):
        load_or_create(tmp_path)
