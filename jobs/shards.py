"""The shard state of a label job in Redis (redis-py only, like jobs.store, with the same key prefix).

A label job's record and lease are the ones every job has (jobs.store); its shards add:
- hash `ssa:job:<id>:plan`: `token` (the job lease token its shards share), `shards` (JSON list of ShardRange),
  `dispatched` ('1' once the Celery chord was sent, so that a second delivery of the job never sends another);
- hash `ssa:job:<id>:shard-rows` (shard -> rows done in its current run: the job's progress is their sum),
  set `ssa:job:<id>:shard-done` (a shard counts once, however often it ran), hash `ssa:job:<id>:shard-attempts`;
- `ssa:shard-lease:<id>:<shard>`: which task copy runs a shard; it expires unless refreshed, so that a copy of a
  shard delivered again after its worker died can run, while a duplicate of a live one is deferred.

A training job's fanned-out probing step (worker.probe_fanout) uses the same keys under a `scope` of its own per
forward call (`probe-<call>:`, e.g. `ssa:job:<id>:probe-<call>:plan`), so that a shard message of an earlier call
finds no plan and is dropped; those keys live `PROBE_TTL_S` at most and are deleted when the call has its rows.
"""

from __future__ import annotations

import json
from typing import Literal, NamedTuple, cast

from pydantic import TypeAdapter

from jobs.label_shards import ShardRange
from jobs.store import JobStore

JoinOutcome = Literal["claimed", "leased", "done", "terminal", "cancelled", "exhausted", "lost", "missing"]
_RANGES = TypeAdapter(list[ShardRange])
PLAN_TTL_S = 7 * 24 * 3600
PROBE_TTL_S = 24 * 3600
_PLAN_KEYS = ("plan", "shard-rows", "shard-done", "shard-attempts")

# KEYS: job, job lease, shard lease, attempts, done, plan. ARGV: job token, shard token, ttl_ms, shard, max_attempts,
# now
_JOIN = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if redis.call('EXISTS', KEYS[6]) == 0 then return {'missing', ''} end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then return {'terminal', status} end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return {'cancelled', ''} end
if redis.call('SISMEMBER', KEYS[5], ARGV[4]) == 1 then return {'done', ''} end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[2] then return {'leased', holder} end
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return {'lost', lease} end
local attempts = tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0')
if attempts >= tonumber(ARGV[5]) then return {'exhausted', tostring(attempts)} end
attempts = redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[6])
return {'claimed', tostring(attempts)}
"""

# KEYS: job, job lease, shard lease. ARGV: job token, shard token, ttl_ms, now
_BEAT = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[4])
return 1
"""

# KEYS: job lease. ARGV: job token, ttl_ms
_HOLD = """
local lease = redis.call('GET', KEYS[1])
if lease and lease ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: shard lease. ARGV: shard token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class Join(NamedTuple):
    """What a shard's delivery found (see `ShardStore.join`); `attempt` is set when claimed."""

    outcome: JoinOutcome
    detail: str = ""
    attempt: int = 0


class Plan(NamedTuple):
    token: str
    shards: list[ShardRange]
    dispatched: bool

    @property
    def rows(self) -> int:
        return sum(shard.rows for shard in self.shards)


class ShardStore:
    """Shard plan, leases, progress and completion of label jobs."""

    def __init__(self, jobs: JobStore, scope: str = "", ttl_s: int = PLAN_TTL_S) -> None:
        self.jobs, self.redis, self.prefix = jobs, jobs.redis, jobs.prefix
        self.scope, self.ttl_s = scope, ttl_s
        self._join = self.redis.register_script(_JOIN)
        self._beat = self.redis.register_script(_BEAT)
        self._release = self.redis.register_script(_RELEASE)
        self._hold = self.redis.register_script(_HOLD)

    # ---- keys ----------------------------------------------------------------------------------------
    def _key(self, job_id: str, what: str) -> str:
        return f"{self.prefix}:job:{job_id}:{self.scope}{what}"

    def shard_lease_key(self, job_id: str, shard: int) -> str:
        return f"{self.prefix}:shard-lease:{job_id}:{self.scope}{shard}"

    # ---- the plan ------------------------------------------------------------------------------------
    def save_plan(self, job_id: str, token: str, shards: list[ShardRange]) -> None:
        """Record the plan of a new attempt (forgetting an earlier attempt's progress)."""
        key = self._key(job_id, "plan")
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key, self._key(job_id, "shard-rows"), self._key(job_id, "shard-done"),
                    self._key(job_id, "shard-attempts"))
        pipe.hset(key, mapping={"token": token, "shards": _RANGES.dump_json(shards).decode()})
        for name in _PLAN_KEYS:
            pipe.expire(self._key(job_id, name), self.ttl_s)
        pipe.execute()

    def drop(self, job_id: str) -> None:
        """Forget this scope's plan and shard state (a probing call that has its rows)."""
        self.redis.delete(*(self._key(job_id, name) for name in _PLAN_KEYS))

    def mark_dispatched(self, job_id: str) -> None:
        self.redis.hset(self._key(job_id, "plan"), "dispatched", "1")

    def plan(self, job_id: str) -> Plan | None:
        raw = cast(dict[str, str], self.redis.hgetall(self._key(job_id, "plan")))
        if not raw or "shards" not in raw:
            return None
        return Plan(raw["token"], _RANGES.validate_json(raw["shards"]), raw.get("dispatched") == "1")

    # ---- a shard's run -------------------------------------------------------------------------------
    def join(self, job_id: str, shard: int, *, job_token: str, token: str, ttl_s: float, max_attempts: int,
             now: float) -> Join:
        """Take the shard's lease (and refresh the job's) unless the job ended or is being cancelled, the shard is
        done already, another live copy runs it, or it is out of attempts."""
        keys = [self.jobs.job_key(job_id), self.jobs.lease_key(job_id), self.shard_lease_key(job_id, shard),
                self._key(job_id, "shard-attempts"), self._key(job_id, "shard-done"), self._key(job_id, "plan")]
        outcome, detail = self._join(keys=keys, args=[job_token, token, int(ttl_s * 1000), shard, max_attempts, now])
        return Join(cast(JoinOutcome, outcome), str(detail), int(detail) if outcome == "claimed" else 0)

    def beat(self, job_id: str, shard: int, *, job_token: str, token: str, ttl_s: float, now: float) -> bool:
        """Refresh the shard's and the job's lease; False when this copy no longer holds the shard."""
        keys = [self.jobs.job_key(job_id), self.jobs.lease_key(job_id), self.shard_lease_key(job_id, shard)]
        return bool(self._beat(keys=keys, args=[job_token, token, int(ttl_s * 1000), now]))

    def hold(self, job_id: str, job_token: str, ttl_s: float) -> bool:
        """Take the job's lease again for `job_token` (the shards' shared token) unless another token holds it: the
        lease lapses between shards when no shard runs."""
        return bool(self._hold(keys=[self.jobs.lease_key(job_id)], args=[job_token, int(ttl_s * 1000)]))

    def release(self, job_id: str, shard: int, token: str) -> None:
        self._release(keys=[self.shard_lease_key(job_id, shard)], args=[token])

    def set_rows(self, job_id: str, shard: int, rows: int) -> int:
        """Record the rows a shard's run has done; the job's rows done over all its shards."""
        key = self._key(job_id, "shard-rows")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, str(shard), rows)
        pipe.expire(key, self.ttl_s)
        pipe.hvals(key)
        values = pipe.execute()[-1]
        return sum(int(value) for value in values)

    def finish_shard(self, job_id: str, shard: int, rows: int) -> int:
        """Count the shard as done (once); the number of shards done."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(job_id, "shard-rows"), str(shard), rows)
        pipe.sadd(self._key(job_id, "shard-done"), str(shard))
        for name in ("shard-rows", "shard-done"):  # a late copy of a dropped probing call leaves nothing for long
            pipe.expire(self._key(job_id, name), self.ttl_s)
        pipe.scard(self._key(job_id, "shard-done"))
        return int(pipe.execute()[-1])

    def done(self, job_id: str) -> set[int]:
        return {int(item) for item in cast(set[str], self.redis.smembers(self._key(job_id, "shard-done")))}

    def attempts(self, job_id: str) -> dict[int, int]:
        raw = cast(dict[str, str], self.redis.hgetall(self._key(job_id, "shard-attempts")))
        return {int(key): int(value) for key, value in raw.items()}

    def summary(self, job_id: str) -> str:
        return json.dumps({"done": sorted(self.done(job_id)), "attempts": self.attempts(job_id)})
