"""The layout of a parallel run: how N processes split the work, and who talks to whom.

`--parallel dp=2,tp=1,pp=1[,zero=1][,schedule=1f1b]`: dp data-parallel replicas x tp
tensor-parallel shards of each layer x pp pipeline stages = N processes. Ranks are numbered with the
tensor-parallel index fastest (the ranks of one layer sit next to each other, on one
node in a real cluster, where the bandwidth is), then data-parallel, then stage:

    rank = (stage * dp + replica) * tp + shard

Three sub-communicators follow: `tp` (the shards of one stage of one replica), `dp`
(the replicas of one shard of one stage: gradients are averaged over it) and `pp` (the
stages of one shard of one replica: activations flow along it).
"""

from __future__ import annotations

from dataclasses import dataclass

KEYS = ("dp", "tp", "pp", "zero", "schedule")
SCHEDULES = ("gpipe", "1f1b")  # the pipeline's order of passes (gpt.parallel.pipeline)


@dataclass(frozen=True)
class Layout:
    dp: int = 1
    tp: int = 1
    pp: int = 1
    zero: int = 0  # 1: ZeRO stage 1 over the data-parallel ranks
    schedule: str = "gpipe"

    def __post_init__(self):
        for key in ("dp", "tp", "pp"):
            if getattr(self, key) < 1:
                raise ValueError(f"--parallel: {key} must be >= 1, got {getattr(self, key)}")
        if self.zero not in (0, 1):
            raise ValueError(f"--parallel: zero must be 0 or 1 (ZeRO stage 1), got {self.zero}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--parallel: schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.schedule!r}")

    @classmethod
    def parse(cls, spec: str) -> Layout:
        """'dp=2,tp=1,pp=1' (absent keys are 1; zero=1 shards the optimizer state;
        schedule=1f1b orders the pipeline's passes one forward, one backward)."""
        values = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, _, value = (t.strip() for t in item.partition("="))
            if key not in KEYS or not (value.isdigit() or key == "schedule" and value):
                raise ValueError(f"--parallel: cannot read {item!r}; expected key=integer "
                                 f"with keys {', '.join(KEYS[:-1])} (and schedule=gpipe or "
                                 "1f1b), e.g. dp=2,tp=1,pp=1")
            if key in values:
                raise ValueError(f"--parallel: {key} is given twice in {spec!r}")
            values[key] = value if key == "schedule" else int(value)
        return cls(**values)

    @property
    def size(self) -> int:
        return self.dp * self.tp * self.pp

    def coordinates(self, rank: int) -> tuple[int, int, int]:
        """(stage, replica, shard) of `rank`."""
        rest, shard = divmod(rank, self.tp)
        stage, replica = divmod(rest, self.dp)
        return stage, replica, shard

    def __str__(self) -> str:
        return (f"dp={self.dp},tp={self.tp},pp={self.pp}" + (",zero=1" if self.zero else "")
                + (f",schedule={self.schedule}" if self.schedule != "gpipe" else ""))

    def check_world(self, size: int | None) -> None:
        """The launch must start exactly dp x tp x pp processes."""
        if size is None and self.size > 1:
            raise ValueError(f"--parallel {self} needs {self.size} processes started by an MPI "
                             f"launcher: mpiexec -n {self.size} python -m gpt train "
                             f"--parallel {self} ...")
        if size is not None and size != self.size:
            raise ValueError(f"--parallel {self}: dp x tp x pp = {self.dp} x {self.tp} x "
                             f"{self.pp} = {self.size} processes, but mpiexec started {size}; "
                             f"use mpiexec -n {self.size} or change the layout")
