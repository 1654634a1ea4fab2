"""Under concurrent HTTP load: hot swaps fail no request, requests are batched, a full queue is 429, a late
answer is 504."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from service.app import create_app
from ssa_core.runtime.artifacts import ArtifactStore
from tests.service.conftest import API_KEY, LiveServer, make_settings

KEY = {"X-API-Key": API_KEY.encode()}


def metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


async def hammer(url: str, worker: int, stop: asyncio.Event, statuses: Counter[int], models: Counter[str]) -> None:
    """One client (its own connection) sending predict requests until told to stop."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            response = await client.post("/predict", json={"inputs": [f"client {worker} says {n}", "fine film"]})
            statuses[response.status_code] += 1
            if response.status_code == 200:
                models[response.json()["model_id"]] += 1


async def swap_several_times(url: str, stop: asyncio.Event) -> list[int]:
    codes = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=KEY) as client:
        for target in ("tiny-b", "tiny-a", "tiny-b", "tiny-a", "tiny-b"):
            await asyncio.sleep(0.15)
            codes.append((await client.post(f"/models/{target}/deploy")).status_code)
        await asyncio.sleep(0.15)
    stop.set()
    return codes


def test_hot_swap_under_concurrent_load_fails_no_request(live: LiveServer, model_store: ArtifactStore) -> None:
    statuses: Counter[int] = Counter()
    models: Counter[str] = Counter()

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        clients = [hammer(live.url, i, stop, statuses, models) for i in range(8)]
        results = await asyncio.gather(swap_several_times(live.url, stop), *clients)
        return list(results[0])

    deploy_codes = asyncio.run(scenario())
    assert deploy_codes == [200] * 5
    assert set(statuses) == {200}, statuses
    assert statuses[200] >= 40
    assert set(models) == {"tiny-a", "tiny-b"}
    assert model_store.active_model_id() == "tiny-b"
    with live.client() as client:
        metrics = client.get("/metrics").text
    singles = metric(metrics, 'ssa_batch_requests_bucket{le="1.0"}')
    assert singles < metric(metrics, "ssa_batch_requests_count"), "no batch ever grouped two requests"


def test_full_queue_is_429_with_retry_after(model_store: ArtifactStore) -> None:
    settings = make_settings(model_store.root, queue_size=2, max_wait_ms=300, max_batch_size=64)
    with LiveServer(create_app(settings)) as server:
        server.wait_ready()

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                return await asyncio.gather(*(client.post("/predict", json={"inputs": f"text {i}"})
                                              for i in range(8)))

        responses = asyncio.run(burst())
    codes = Counter(r.status_code for r in responses)
    assert codes[200] >= 2 and codes[429] >= 1 and set(codes) <= {200, 429}, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "queue_full"


def test_late_answer_is_504(tmp_path: Path, model_store: ArtifactStore) -> None:
    settings = make_settings(model_store.root, request_timeout_s=0.001)  # less than any inference takes
    with LiveServer(create_app(settings)) as server:
        server.wait_ready()
        with server.client() as client:
            response = client.post("/predict", json={"inputs": ["too slow"] * 64})
            metrics = client.get("/metrics").text
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout"
    assert 'ssa_rejected_requests_total{reason="timeout"} 1.0' in metrics
