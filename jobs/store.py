"""Training-job state in Redis (redis-py only: the API and the worker both use it; no Celery and no torch here).

Keys (prefix `ssa`): hash `ssa:job:<id>` (the job), sorted sets `ssa:jobs` and `ssa:jobs:<status>` (indexes by
creation time), `ssa:lease:<id>` (which worker runs the job; expires unless its heartbeat refreshes it),
list `ssa:job:<id>:events` (deliveries, deferrals, attempts), `ssa:idem:<key>` (Idempotency-Key -> job id),
`ssa:model-id:<model id>` (the job that reserved a model id at submission; dropped when that job ends).
Every state change is one Lua script, so the API and the workers never interleave half-changes.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis
from pydantic import BaseModel, TypeAdapter
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from jobs.labelspec import LABEL_KIND, TRAIN_KIND, JobKind, LabelDataRecord, LabelJobSpec
from jobs.records import (
    QUEUED,
    RUNNING,
    STATUSES,
    TERMINAL,
    CancelOutcome,
    CancelResult,
    Claim,
    ClaimOutcome,
    DataRecord,
    DeleteOutcome,
    DeleteResult,
    IdempotencyBinding,
    IterationSummary,
    Job,
    JobResult,
    Status,
)
from jobs.spec import TrainJobSpec

MAX_EVENTS = 200
_ITERATIONS = TypeAdapter(list[IterationSummary])

FLOAT_FIELDS = frozenset({"progress", "eta_s", "created_at", "updated_at", "started_at", "finished_at",
                          "heartbeat_at"})
INT_FIELDS = frozenset({"attempts", "iteration", "step", "total_steps"})
BOOL_FIELDS = frozenset({"cancel_requested", "deployed"})
JSON_FIELDS = frozenset({"config", "data", "iterations", "result"})

_LUA_COMMON = """
local function move(prefix, id, job, new)
  local old = redis.call('HGET', job, 'status')
  local score = tonumber(redis.call('HGET', job, 'created_at') or '0')
  if old then redis.call('ZREM', prefix .. ':jobs:' .. old, id) end
  redis.call('ZADD', prefix .. ':jobs:' .. new, score, id)
  redis.call('HSET', job, 'status', new)
  if new == 'succeeded' or new == 'failed' or new == 'cancelled' then
    local model = redis.call('HGET', job, 'model_id')
    if model then
      local reserved = prefix .. ':model-id:' .. model
      if redis.call('GET', reserved) == id then redis.call('DEL', reserved) end
    end
  end
end
local function terminal(status)
  return status == 'succeeded' or status == 'failed' or status == 'cancelled'
end
local function set_pairs(job, first)
  for i = first, #ARGV, 2 do
    if ARGV[i + 1] == '' then redis.call('HDEL', job, ARGV[i]) else redis.call('HSET', job, ARGV[i], ARGV[i + 1]) end
  end
end
"""

# KEYS: model-id reservation. ARGV: job id
_RELEASE_MODEL_ID = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: job, lease. ARGV: prefix, id, token, ttl_ms, now, worker, max_attempts
_CLAIM = _LUA_COMMON + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if terminal(status) then return {'terminal', status} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[3] then return {'leased', holder} end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  move(ARGV[1], ARGV[2], KEYS[1], 'cancelled')
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[5], 'updated_at', ARGV[5], 'stage', 'cancelled')
  redis.call('HDEL', KEYS[1], 'eta_s')
  return {'cancelled', ''}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[7]) then
  local last = redis.call('HGET', KEYS[1], 'error')
  if not last or last == '' then
    last = 'the worker stopped while running it (killed, out of memory or over its time limit)'
  end
  move(ARGV[1], ARGV[2], KEYS[1], 'failed')
  redis.call('HSET', KEYS[1], 'error', 'gave up after ' .. attempts .. ' attempts; last: ' .. last,
             'finished_at', ARGV[5], 'updated_at', ARGV[5], 'stage', 'failed')
  redis.call('HDEL', KEYS[1], 'eta_s')
  return {'exhausted', tostring(attempts)}
end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
move(ARGV[1], ARGV[2], KEYS[1], 'running')
redis.call('HSET', KEYS[1], 'worker', ARGV[6], 'heartbeat_at', ARGV[5], 'updated_at', ARGV[5],
           'stage', 'starting')
if not redis.call('HGET', KEYS[1], 'started_at') then redis.call('HSET', KEYS[1], 'started_at', ARGV[5]) end
return {'claimed', tostring(attempts)}
"""

# KEYS: job, lease. ARGV: token, ttl_ms, now
_HEARTBEAT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[3])
return 1
"""

# KEYS: job, lease. ARGV: token, field, value, field, value, ...
_UPDATE = _LUA_COMMON + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
set_pairs(KEYS[1], 2)
return 1
"""

# KEYS: job, lease. ARGV: prefix, id, token, status, field, value, ...
_FINISH = _LUA_COMMON + """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
move(ARGV[1], ARGV[2], KEYS[1], ARGV[4])
set_pairs(KEYS[1], 5)
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: job. ARGV: prefix, id, now
_CANCEL = _LUA_COMMON + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status == 'queued' then
  move(ARGV[1], ARGV[2], KEYS[1], 'cancelled')
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'finished_at', ARGV[3], 'updated_at', ARGV[3],
             'stage', 'cancelled')
  return {'cancelled', 'cancelled'}
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[3])
  return {'requested', status}
end
return {'ended', status}
"""

# KEYS: job, lease. ARGV: prefix, id, now, error
_FAIL_IF_ACTIVE = _LUA_COMMON + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or terminal(status) then return 0 end
move(ARGV[1], ARGV[2], KEYS[1], 'failed')
redis.call('HSET', KEYS[1], 'error', ARGV[4], 'finished_at', ARGV[3], 'updated_at', ARGV[3], 'stage', 'failed')
redis.call('HDEL', KEYS[1], 'eta_s')
redis.call('DEL', KEYS[2])
return 1
"""


# KEYS: job, events, lease. ARGV: prefix, id
_DELETE_ENDED = _LUA_COMMON + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if not terminal(status) then return {'active', status} end
redis.call('ZREM', ARGV[1] .. ':jobs', ARGV[2])
redis.call('ZREM', ARGV[1] .. ':jobs:' .. status, ARGV[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {'deleted', status}
"""


def _plain(value: Any) -> Any:
    """Records as JSON values (by alias), containers element by element."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def encode(value: Any) -> str:
    """A field value as stored: '' for None, JSON for records and containers, '1'/'0' for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, BaseModel | dict | list | tuple):
        return json.dumps(_plain(value), separators=(",", ":"))
    return str(value)


def _decode_json(name: str, text: str) -> Any:
    value = json.loads(text)
    if name == "config":
        return TrainJobSpec.from_record(value)
    if name == "data":
        return DataRecord.model_validate(value) if value else None
    if name == "iterations":
        return _ITERATIONS.validate_python(value)
    return JobResult.model_validate(value) if value is not None else None


def decode_job(raw: dict[str, str]) -> Job:
    """A job from its Redis hash (every field a string; absent or '' for None)."""
    values: dict[str, Any] = {}
    label_job = raw.get("kind") == LABEL_KIND
    for name, text in raw.items():
        if name not in Job.__dataclass_fields__ or text == "" or (label_job and name in ("config", "data")):
            continue
        if name in FLOAT_FIELDS:
            values[name] = float(text)
        elif name in INT_FIELDS:
            values[name] = int(text)
        elif name in BOOL_FIELDS:
            values[name] = text == "1"
        elif name in JSON_FIELDS:
            values[name] = _decode_json(name, text)
        else:
            values[name] = text
    if label_job:
        values["config"] = LabelJobSpec.from_record(json.loads(raw["config"]))
        values["data"] = LabelDataRecord.model_validate(json.loads(raw["data"])) if raw.get("data") else None
    return Job(**values)


def _pairs(fields: dict[str, Any]) -> list[str]:
    return [item for name, value in fields.items() for item in (name, encode(value))]


def connect(url: str, retries: int = 12) -> redis.Redis:
    """A client with socket timeouts that retries a dropped connection: 12 retries ride out a Redis restart of about
    20 s (workers); the API uses fewer, to answer 503 quickly."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


class JobStore:
    """Reads and changes job state; `prefix` separates deployments (and tests) sharing one Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "ssa") -> None:
        self.redis = client
        self.prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._update = client.register_script(_UPDATE)
        self._finish = client.register_script(_FINISH)
        self._cancel = client.register_script(_CANCEL)
        self._fail_if_active = client.register_script(_FAIL_IF_ACTIVE)
        self._release_model_id = client.register_script(_RELEASE_MODEL_ID)
        self._delete_ended = client.register_script(_DELETE_ENDED)

    @classmethod
    def from_url(cls, url: str, prefix: str = "ssa", retries: int = 12) -> JobStore:
        return cls(connect(url, retries), prefix)

    # ---- keys ----------------------------------------------------------------------------------------
    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def lease_key(self, job_id: str) -> str:
        return f"{self.prefix}:lease:{job_id}"

    def index_key(self, status: str | None = None) -> str:
        return f"{self.prefix}:jobs" if status is None else f"{self.prefix}:jobs:{status}"

    def events_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def model_id_key(self, model_id: str) -> str:
        return f"{self.prefix}:model-id:{model_id}"

    # ---- reading -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        raw = cast(dict[str, str], self.redis.hgetall(self.job_key(job_id)))
        return decode_job(raw) if raw else None

    def list_jobs(self, *, status: Status | None = None, offset: int = 0, limit: int = 20) -> tuple[list[Job], int]:
        """Jobs newest first (optionally of one status), and how many there are in all."""
        key = self.index_key(status)
        ids = cast(list[str], self.redis.zrevrange(key, offset, offset + limit - 1))
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.job_key(job_id))
        jobs = [decode_job(raw) for raw in pipe.execute() if raw]
        return jobs, int(cast(int, self.redis.zcard(key)))

    def count_by_status(self) -> dict[Status, int]:
        """How many jobs each status has (its index's size)."""
        pipe = self.redis.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(self.index_key(status))
        return {status: int(count) for status, count in zip(STATUSES, pipe.execute(), strict=True)}

    def ended_created_before(self, cutoff: float, limit: int = 500) -> list[Job]:
        """Ended jobs (succeeded, failed, cancelled) created before `cutoff` (Unix seconds), oldest first: a job
        that ended before a time was created before it, and the indexes are ordered by creation time."""
        pipe = self.redis.pipeline(transaction=False)
        for status in sorted(TERMINAL):
            pipe.zrangebyscore(self.index_key(status), "-inf", f"({cutoff}", start=0, num=limit)
        ids = [job_id for found in pipe.execute() for job_id in found]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.job_key(job_id))
        jobs = [decode_job(raw) for raw in pipe.execute() if raw]
        return sorted(jobs, key=lambda job: job.created_at)[:limit]

    def recent_durations(self, limit: int = 1000) -> list[tuple[Status, float]]:
        """(status, run seconds: finished_at - started_at) of the most recently created ended jobs that ran, at most
        `limit` per status (jobs cancelled while queued never ran and are left out)."""
        statuses = [status for status in STATUSES if status in TERMINAL]
        pipe = self.redis.pipeline(transaction=False)
        for status in statuses:
            pipe.zrevrange(self.index_key(status), 0, limit - 1)
        found = [(status, job_id) for status, ids in zip(statuses, pipe.execute(), strict=True) for job_id in ids]
        pipe = self.redis.pipeline(transaction=False)
        for _, job_id in found:
            pipe.hmget(self.job_key(job_id), "started_at", "finished_at")
        durations = []
        for (status, _), (started, finished) in zip(found, pipe.execute(), strict=True):
            if started and finished:
                durations.append((status, max(0.0, float(finished) - float(started))))
        return durations

    def orphans(self, limit: int = 500) -> list[str]:
        """Running jobs whose lease has expired: their worker died (a claim sets status and lease together, and
        every end of a run clears both together)."""
        ids = cast(list[str], self.redis.zrange(self.index_key(RUNNING), 0, limit - 1))
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self.lease_key(job_id))
        return [job_id for job_id, leased in zip(ids, pipe.execute(), strict=True) if not leased]

    def mark_requeued(self, job_id: str, attempts: int, ttl_s: int) -> bool:
        """True for the first caller only, per job and attempt: so that one dead run is re-queued once."""
        return bool(self.redis.set(f"{self.prefix}:requeued:{job_id}:{attempts}", "1", nx=True, ex=ttl_s))

    def lease_holder(self, job_id: str) -> str | None:
        return cast(str | None, self.redis.get(self.lease_key(job_id)))

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self.job_key(job_id), "cancel_requested") == "1"

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in cast(list[str], self.redis.lrange(self.events_key(job_id), 0, -1))]

    # ---- creating ------------------------------------------------------------------------------------
    def create(self, job_id: str, *, config: TrainJobSpec | LabelJobSpec, data: DataRecord | LabelDataRecord,
               model_id: str) -> Job:
        """Record a new queued job (one transaction: hash and both indexes); a LabelJobSpec makes a label job."""
        now = time.time()
        kind: JobKind = LABEL_KIND if isinstance(config, LabelJobSpec) else TRAIN_KIND
        job = Job(id=job_id, status=QUEUED, created_at=now, updated_at=now, model_id=model_id, config=config,
                  data=data, kind=kind)
        fields = {name: encode(value) for name, value in job.to_dict().items() if encode(value) != ""}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.job_key(job_id), mapping=cast(Any, fields))
        pipe.zadd(self.index_key(), {job_id: now})
        pipe.zadd(self.index_key(QUEUED), {job_id: now})
        pipe.persist(self.model_id_key(model_id))  # reserved by reserve_model_id: now held until the job ends
        pipe.execute()
        self.add_event(job_id, "created")
        return job

    def reserve_idempotency_key(self, key: str, job_id: str, fingerprint: str,
                                ttl_s: int) -> IdempotencyBinding | None:
        """Bind `key` to `job_id` unless it is bound already (SET NX): None when bound now, else the earlier
        binding."""
        name = f"{self.prefix}:idem:{key}"
        value = json.dumps({"job_id": job_id, "fingerprint": fingerprint})
        if self.redis.set(name, value, nx=True, ex=ttl_s):
            return None
        earlier = self.redis.get(name)
        if earlier is None:  # expired between the two commands: bind it now
            return self.reserve_idempotency_key(key, job_id, fingerprint, ttl_s)
        stored = json.loads(cast(str, earlier))
        return IdempotencyBinding(str(stored.get("job_id", "")), str(stored.get("fingerprint", "")))

    def reserve_model_id(self, model_id: str, job_id: str, ttl_s: int) -> str | None:
        """Reserve `model_id` for `job_id` (SET NX), so that a second submission naming it is refused at once: None
        when reserved now, else the job id holding it. The reservation expires after `ttl_s` unless `create` makes
        it last; every move of the job to an end status (succeeded, failed, cancelled) drops it."""
        key = self.model_id_key(model_id)
        if self.redis.set(key, job_id, nx=True, ex=ttl_s):
            return None
        holder = cast(str | None, self.redis.get(key))
        if holder is None:  # expired between the two commands: reserve it now
            return self.reserve_model_id(model_id, job_id, ttl_s)
        return holder

    def release_model_id(self, model_id: str, job_id: str) -> None:
        """Drop the reservation of `model_id` if `job_id` holds it (its submission failed before the job existed)."""
        self._release_model_id(keys=[self.model_id_key(model_id)], args=[job_id])

    def model_id_holder(self, model_id: str) -> str | None:
        return cast(str | None, self.redis.get(self.model_id_key(model_id)))

    def release_idempotency_key(self, key: str, job_id: str) -> None:
        """Forget `key` if it still points at `job_id` (the submission failed before the job existed)."""
        name = f"{self.prefix}:idem:{key}"
        earlier = self.redis.get(name)
        if earlier is not None and json.loads(cast(str, earlier)).get("job_id") == job_id:
            self.redis.delete(name)

    # ---- the worker's side ---------------------------------------------------------------------------
    def claim(self, job_id: str, *, token: str, worker: str, ttl_s: float, max_attempts: int) -> Claim:
        """Take the job's lease and mark it running, unless it is finished, leased elsewhere, cancelled, or out of
        attempts (then it is failed here)."""
        args: list[str | int | float] = [self.prefix, job_id, token, int(ttl_s * 1000), time.time(), worker,
                                          max_attempts]
        outcome, detail = self._claim(keys=[self.job_key(job_id), self.lease_key(job_id)], args=args)
        attempt = int(detail) if outcome == "claimed" else 0
        return Claim(cast(ClaimOutcome, outcome), detail, attempt)

    def heartbeat(self, job_id: str, token: str, ttl_s: float) -> bool:
        """Extend the lease; False when `token` no longer holds it."""
        keys = [self.job_key(job_id), self.lease_key(job_id)]
        return bool(self._heartbeat(keys=keys, args=[token, int(ttl_s * 1000), time.time()]))

    def update(self, job_id: str, token: str, **fields: Any) -> bool:
        """Set fields (None deletes one) while `token` holds the lease; False otherwise."""
        fields["updated_at"] = time.time()
        keys = [self.job_key(job_id), self.lease_key(job_id)]
        return bool(self._update(keys=keys, args=[token, *_pairs(fields)]))

    def finish(self, job_id: str, token: str, status: Status, **fields: Any) -> bool:
        """Move the job to `status`, set fields and drop the lease, if `token` holds it."""
        now = time.time()
        fields["updated_at"] = now
        if status in TERMINAL:
            fields.setdefault("finished_at", now)
            fields.setdefault("eta_s", None)
        keys = [self.job_key(job_id), self.lease_key(job_id)]
        return bool(self._finish(keys=keys, args=[self.prefix, job_id, token, status, *_pairs(fields)]))

    def fail_if_active(self, job_id: str, error: str) -> bool:
        """Fail a job that is still queued or running, whoever holds it (the worker's last resort)."""
        keys = [self.job_key(job_id), self.lease_key(job_id)]
        return bool(self._fail_if_active(keys=keys, args=[self.prefix, job_id, time.time(), error]))

    def add_event(self, job_id: str, event: str, **detail: Any) -> None:
        record = json.dumps({"at": time.time(), "event": event, **detail})
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(self.events_key(job_id), record)
        pipe.ltrim(self.events_key(job_id), -MAX_EVENTS, -1)
        pipe.execute()

    # ---- the API's side ------------------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> CancelResult:
        """Cancel a queued job at once, or ask a running one to stop (see CancelResult)."""
        outcome, status = self._cancel(keys=[self.job_key(job_id)], args=[self.prefix, job_id, time.time()])
        return CancelResult(cast(CancelOutcome, str(outcome)), str(status))

    def delete_ended(self, job_id: str) -> DeleteResult:
        """Remove an ended job's record (hash, index entries, events) in one step; a queued or running job is left
        as it is (`active`). The job folder is the caller's (jobs.removal)."""
        keys = [self.job_key(job_id), self.events_key(job_id), self.lease_key(job_id)]
        outcome, status = self._delete_ended(keys=keys, args=[self.prefix, job_id])
        return DeleteResult(cast(DeleteOutcome, str(outcome)), str(status))
