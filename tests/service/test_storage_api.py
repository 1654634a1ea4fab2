"""DELETE /models/{id}, models' disk use, and several API keys at once (key rotation), against a real server and a
real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import check_api_key
from service.errors import ApiError
from service.inference.manager import ModelInUse, ModelManager
from service.metrics import ServiceMetrics
from service.settings import Settings
from ssa_core.runtime.artifacts import ArtifactStore, NotFound, folder_bytes
from tests.service.conftest import API_KEY, LiveServer, make_settings

KEY = {"X-API-Key": API_KEY.encode()}


def files_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_models_show_their_size_on_disk(shared_live: LiveServer, shared_store: ArtifactStore) -> None:
    expected = files_size(shared_store.model_dir("tiny-b"))
    with shared_live.client() as client:
        listing = client.get("/models").json()
        one = client.get("/models/tiny-b").json()
    assert expected > 0 and one["disk_bytes"] == expected
    assert {m["model_id"]: m["disk_bytes"] for m in listing["models"]}["tiny-b"] == expected
    assert folder_bytes(shared_store.root / "nowhere") == 0


def test_delete_a_model(live: LiveServer, model_store: ArtifactStore) -> None:
    with live.client() as client:
        no_key = client.delete("/models/tiny-b")
        active = client.delete("/models/tiny-a", headers=KEY)
        unknown = client.delete("/models/nope", headers=KEY)
        invalid = client.delete("/models/a..b", headers=KEY)
        done = client.delete("/models/tiny-b", headers=KEY)
        again = client.delete("/models/tiny-b", headers=KEY)
        listing = client.get("/models").json()
        one = client.get("/models/tiny-b")
        options = client.request("OPTIONS", "/models/tiny-a")
    assert options.status_code == 405 and options.headers["allow"] == "DELETE, GET"  # every method of the path
    assert no_key.status_code == 401
    assert active.status_code == 409 and active.json()["error"]["type"] == "model_in_use"
    assert "active" in active.json()["error"]["message"] and str(model_store.root) not in active.text
    assert unknown.status_code == 404 and invalid.status_code == 422
    assert done.status_code == 204 and done.content == b""
    assert again.status_code == 404 and one.status_code == 404
    assert [m["model_id"] for m in listing["models"]] == ["tiny-a"]
    assert not model_store.model_dir("tiny-b").exists()
    assert list(model_store.staging_root.iterdir()) == []  # nothing half-deleted left behind
    assert model_store.model_dir("tiny-a").is_dir()


def test_the_served_model_is_kept_even_when_no_longer_active(live: LiveServer, model_store: ArtifactStore) -> None:
    (model_store.root / "active.json").unlink()  # nothing active; tiny-a is still being served
    with live.client() as client:
        served = client.delete("/models/tiny-a", headers=KEY)
    assert served.status_code == 409 and "served" in served.json()["error"]["message"]
    assert model_store.has_model("tiny-a")


def test_a_model_made_active_during_its_removal_is_put_back(model_store: ArtifactStore) -> None:
    """Another process (the worker's deploy gate) points active.json at the model between the first check and the
    rename: the second read sees it, the folder comes back and the removal is refused."""
    manager = ModelManager(model_store, make_settings(model_store.root), ServiceMetrics())
    reads: list[str | None] = [None, "tiny-b"]
    model_store.active_model_id = lambda: reads.pop(0) if len(reads) > 1 else reads[0]  # type: ignore[method-assign]
    with pytest.raises(ModelInUse, match="made active while"):
        asyncio.run(manager.remove("tiny-b"))
    assert model_store.has_model("tiny-b") and model_store.get_model("tiny-b").model_id == "tiny-b"
    assert list(model_store.staging_root.iterdir()) == []
    with pytest.raises(NotFound):
        asyncio.run(manager.remove("gone"))


# ---- several keys ----------------------------------------------------------------------------------------------
def refused(settings: Settings, key: str | None) -> bool:
    try:
        check_api_key(settings, key)
    except ApiError as exc:
        assert exc.status == 401
        return True
    return False


def test_old_and_new_keys_are_both_accepted_during_a_rotation(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSA_API_KEY", "old-key")
    monkeypatch.setenv("SSA_API_KEYS", " new-key , newer-ö ,")
    during = Settings(home=tmp_path)
    assert during.accepted_keys() == ("old-key", "new-key", "newer-ö")
    assert "new-key" not in repr(during)
    assert not refused(during, "old-key") and not refused(during, "new-key")
    assert not refused(during, "newer-ö".encode().decode("latin-1"))  # headers arrive as latin-1
    assert refused(during, "other") and refused(during, None) and refused(during, "new-ke")
    monkeypatch.setenv("SSA_API_KEY", "new-key")
    monkeypatch.delenv("SSA_API_KEYS")
    after = Settings(home=tmp_path)
    assert refused(after, "old-key") and not refused(after, "new-key")
    only_list = Settings(home=tmp_path, api_key=None, api_keys="k1,k2")
    assert not refused(only_list, "k2") and refused(only_list, "k3")


def test_rotation_over_http(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", api_key="old-key", api_keys="new-key")
    with TestClient(create_app(settings)) as client:
        answers = {key: client.delete("/models/nope", headers={"X-API-Key": key}).status_code
                   for key in ("old-key", "new-key", "removed-key")}
    assert answers == {"old-key": 404, "new-key": 404, "removed-key": 401}
