"""The training data of a data-parallel run: one shard of the token stream per replica.

The training tokens are cut into `shards` contiguous pieces (one per data-parallel
replica when the run starts), so replicas never see the same window; shard i draws its
windows with its own stream seeded seed + i. A process reads the shards it owns and
stacks their batches: a replica of a dp=2 run owns one, a single process continuing
that run owns both, and its batch is the global batch of the two replicas, row for
row. The state records each owned shard's position, so any layout whose replica count
divides the shard count continues the same data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from gpt.files import PARALLEL_FILE
from minigrad.io import atomic

# In a parallel run's folder: its layout and data shard count (a later resume, under
# any layout or in one process, reads the data the same way).


class ShardedWindows:
    def __init__(self, tokens, block_size: int, config, shards: int, owned):
        from gpt.train import make_batches

        self.shards, self.owned = shards, list(owned)
        size = len(tokens) // shards
        self.streams = {i: make_batches(tokens[i * size:(i + 1) * size], block_size,
                                        dataclasses.replace(config, seed=config.seed + i))
                        for i in self.owned}

    @classmethod
    def for_replica(cls, tokens, block_size: int, config, shards: int, replica: int,
                    replicas: int) -> ShardedWindows:
        """The shards replica `replica` of `replicas` owns (a contiguous, equal share)."""
        if shards % replicas:
            raise ValueError(f"the data is cut into {shards} shards (the run's data-parallel "
                             f"size); {replicas} replicas cannot share them equally, use a "
                             f"dp that divides {shards}")
        per = shards // replicas
        return cls(tokens, block_size, config, shards, range(replica * per, (replica + 1) * per))

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.streams[i].next_batch() for i in self.owned]
        return (np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs]))

    def state_dict(self) -> dict:
        return {"shards": self.shards,
                "streams": {str(i): s.state_dict() for i, s in self.streams.items()}}

    def load_state_dict(self, state: dict) -> None:
        if "shards" not in state:
            raise ValueError("the checkpoint comes from a single-process run, whose data "
                             "stream is not sharded; resume it without --parallel")
        if state["shards"] != self.shards:
            raise ValueError(f"the checkpoint's data stream has {state.get('shards')} shards, "
                             f"this run {self.shards}")
        for i, stream in self.streams.items():
            stream.load_state_dict(state["streams"][str(i)])


def merge_states(states: list[dict]) -> dict:
    """One state from the replicas' states (each holds its own shards' positions)."""
    merged = {"shards": states[0]["shards"], "streams": {}}
    for state in states:
        merged["streams"].update(state["streams"])
    return merged


def record_layout(run_dir, layout) -> None:
    """Write a new run folder's parallel.json (the main rank)."""
    atomic.write_json(Path(run_dir) / PARALLEL_FILE,
                      {"layout": str(layout), "data_shards": layout.dp})


def data_shards(run_dir) -> int | None:
    """The run's data shard count, None for a run that never ran in parallel."""
    path = Path(run_dir) / PARALLEL_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["data_shards"]


def batches_for(tokens, block_size: int, config, run_dir, parallel):
    """The training batches of this process when the run is or was parallel: its replica's
    shards (all of them in a single process); None for a plain single-process run."""
    shards = data_shards(run_dir)
    if parallel is None:
        return None if shards is None else ShardedWindows(tokens, block_size, config, shards,
                                                          range(shards))
    return parallel.batches(tokens, block_size, config, shards)
