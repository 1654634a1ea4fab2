"""The contract of a training job's fanned-out probing step (worker.probe_fanout): the message of one probe shard
(`ssa.probe-shard`, JSON across Redis) and where its files lie in the job folder. Torch-free. (ssa_core.train's
probe_shards is the probing of one shard itself; this module is only its message and its files.)"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel

from jobs.label_shards import ShardRange

PROBE_DIR: Final = "probe"  # in the job folder while the job trains; removed with its checkpoints
PROBE_MODEL_DIR: Final = "model"  # probe/model: the weights being probed in this iteration
SEQUENCES_FILE: Final = "sequences.jsonl"


class ProbeShardMessage(BaseModel):
    """Run sequences [shard.start, shard.end) of forward call `call` of job `job_id` through the job's probe model,
    returning `take` (logits or log-softmax) rows."""

    job_id: str
    call: str
    take: Literal["logits", "log_softmax"]
    shard: ShardRange

    @property
    def scope(self) -> str:
        """The call's key scope in the shard store (jobs.shards)."""
        return f"probe-{self.call}:"


def call_dir(call: str) -> str:
    """The call's folder, relative to the job folder."""
    return f"{PROBE_DIR}/call-{call}"


def output_file(shard: int) -> str:
    return f"out-{shard:05d}.npy"
