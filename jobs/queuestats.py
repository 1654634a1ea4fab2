"""What the broker holds: the length of the Celery queue in Redis (messages waiting for a worker), read with
redis-py only, so that the API can report it without Celery's worker machinery."""

from __future__ import annotations

from typing import cast

import redis

# kombu's Redis transport keeps one list per priority step (0, 3, 6, 9): the queue's own name for priority 0,
# `<queue>\x06\x16<step>` for the others
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that make up Celery queue `queue`."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in `queue` (not those a worker has taken, nor those it holds for a later retry)."""
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue):
        pipe.llen(key)
    return sum(int(cast(int, count)) for count in pipe.execute())
