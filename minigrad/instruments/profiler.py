"""Op profiler: how often each op ran, forward and backward, how long it took, and how
many bytes its results took.

    with minigrad.profile() as prof:
        loss = model(x)
        loss.backward()
    print(prof.table(sort_by="total_time"))

`prof.events` holds one `Event` per op call and phase; `prof.summary()` groups them by
op name into `OpSummary` rows. Timing waits for the device (`Device.synchronize()`)
before reading the clock on both sides of each call, so on a GPU an event measures the
kernel, not just its launch (and profiling serialises the GPU: totals are longer than
an unprofiled run's). Bytes are those of the arrays an op produced: its outputs in
forward, the input gradients in backward.

Outside `profile()` nothing is observed and nothing is paid (see `Function.observers`).
Inside, time spent by other observers on the same ops (anomaly mode's checks) counts
toward the ops, so profile without them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from minigrad import backends
from minigrad.autograd import Function, add_observer, remove_observer

# Bits per element are in the dtype's name ("float32"); bool takes a byte.
_ITEMSIZE = {name: 1 if name == "bool" else int("".join(filter(str.isdigit, name))) // 8
             for name in backends.DTYPE_NAMES}

SORT_KEYS = ("total_time", "forward_time", "backward_time", "calls", "bytes", "name")


@dataclass(frozen=True)
class Event:
    """One call of one op in one phase."""

    name: str  # the op ("mat_mul")
    phase: str  # "forward" or "backward"
    seconds: float
    bytes: int  # bytes of the arrays produced
    shapes: tuple  # input shapes (forward) or shapes of the gradients produced (backward)
    device: str


@dataclass(frozen=True)
class OpSummary:
    """All the events of one op."""

    name: str
    forward_calls: int
    backward_calls: int
    forward_time: float  # seconds
    backward_time: float
    bytes: int  # forward outputs plus backward gradients

    @property
    def calls(self) -> int:
        return self.forward_calls + self.backward_calls

    @property
    def total_time(self) -> float:
        return self.forward_time + self.backward_time


class profile:  # lower case, used like no_grad: `with minigrad.profile() as prof:`
    """Context manager recording every op's forward and backward calls (see module doc)."""

    def __init__(self):
        self.events: list[Event] = []
        self.wall_time = 0.0  # seconds spent inside the with block
        self._hook = self._observe  # one bound method, so remove_observer finds it
        self._start = 0.0
        self._input_shapes: tuple = ()

    def __enter__(self) -> profile:
        add_observer(self._hook)
        self._entered = time.perf_counter()
        return self

    def __exit__(self, *exc):
        remove_observer(self._hook)
        self.wall_time += time.perf_counter() - self._entered
        return False

    def _observe(self, fn: Function, phase: str, payload) -> None:
        # Forward and backward calls never nest (ops run on arrays inside), so one clock.
        if phase in ("before_forward", "before_backward"):
            if phase == "before_forward":
                self._input_shapes = tuple(t.shape for t in payload)
            fn.device.synchronize()
            self._start = time.perf_counter()
            return
        fn.device.synchronize()
        seconds = time.perf_counter() - self._start
        if phase == "after_forward":
            outputs = payload if isinstance(payload, tuple) else (payload,)
            self.events.append(Event(fn.name, "forward", seconds,
                                     _nbytes([t.data for t in outputs]), self._input_shapes,
                                     fn.device.name))
        else:  # after_backward
            arrays = [g for g in payload if g is not None]
            self.events.append(Event(fn.name, "backward", seconds, _nbytes(arrays),
                                     tuple(tuple(g.shape) for g in arrays), fn.device.name))

    # -- reports ----------------------------------------------------------------------
    def summary(self, sort_by: str = "total_time") -> list[OpSummary]:
        """One row per op name, sorted (largest first; "name" sorts alphabetically)."""
        if sort_by not in SORT_KEYS:
            raise ValueError(f"profile.summary: unknown sort_by {sort_by!r}; "
                             f"expected one of {', '.join(SORT_KEYS)}")
        totals: dict[str, list] = {}
        for e in self.events:
            row = totals.setdefault(e.name, [0, 0, 0.0, 0.0, 0])
            backward = e.phase == "backward"
            row[backward] += 1
            row[2 + backward] += e.seconds
            row[4] += e.bytes
        rows = [OpSummary(name, *row) for name, row in totals.items()]
        if sort_by == "name":
            return sorted(rows, key=lambda r: r.name)
        return sorted(rows, key=lambda r: getattr(r, sort_by), reverse=True)

    def table(self, sort_by: str = "total_time", limit: int | None = None) -> str:
        """The summary as a fixed-width text table, with totals."""
        rows = self.summary(sort_by)
        total = sum(r.total_time for r in rows) or 1.0
        width = max([20, *(len(r.name) for r in rows)])
        header = (f"{'op':<{width}} {'fwd calls':>9} {'bwd calls':>9} {'fwd ms':>9} {'bwd ms':>9} "
                  f"{'total ms':>9} {'%':>6} {'MB':>9}")
        lines = [header, "-" * len(header)]
        for r in rows[:limit]:
            lines.append(f"{r.name:<{width}} {r.forward_calls:>9} {r.backward_calls:>9} "
                         f"{r.forward_time * 1e3:>9.3f} {r.backward_time * 1e3:>9.3f} "
                         f"{r.total_time * 1e3:>9.3f} {100 * r.total_time / total:>5.1f}% "
                         f"{r.bytes / 2**20:>9.3f}")
        if limit is not None and len(rows) > limit:
            lines.append(f"... {len(rows) - limit} more ops")
        lines.append("-" * len(header))
        lines.append(f"{len(self.events)} op calls, {sum(r.total_time for r in rows) * 1e3:.3f} "
                     f"ms in ops, {self.wall_time * 1e3:.3f} ms inside profile()")
        return "\n".join(lines)


def _nbytes(arrays) -> int:
    return sum(math.prod(a.shape) * _ITEMSIZE[backends.dtype_name(a.dtype)] for a in arrays)
