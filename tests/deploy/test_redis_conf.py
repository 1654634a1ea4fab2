"""docker/redis.conf, loaded by a real redis-server: durable queue, no silent eviction."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.deploy.conftest import RedisFactory, wait_until


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def test_redis_conf_turns_on_aof_everysec_and_noeviction(redis_server: RedisFactory) -> None:
    settings = client(redis_server()).config_get("*")
    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["maxmemory-policy"] == "noeviction"


def aof_contains(data_dir: Path, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in data_dir.rglob("*.aof") if path.is_file())


def test_writes_reach_the_append_only_file(redis_server: RedisFactory) -> None:
    db = client(redis_server())
    db.set("ssa:probe", "kept")
    data_dir = Path(str(db.config_get("dir")["dir"]))
    assert wait_until(lambda: aof_contains(data_dir, b"ssa:probe"), 5)


def test_full_memory_rejects_writes_instead_of_evicting(redis_server: RedisFactory) -> None:
    db = client(redis_server())
    db.set("ssa:job:queued", "must survive")
    db.config_set("maxmemory", "1")
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        db.set("ssa:job:new", "x")
    assert db.get("ssa:job:queued") == "must survive"
