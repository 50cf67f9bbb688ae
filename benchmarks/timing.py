"""How every benchmark times, prints and saves: wall and CPU time, interleaved rounds,
medians, a printed table and the JSON report.

- `timed(fn)`: one call's wall time (`perf_counter`) and this process's CPU time
  (`process_time`, all its threads), and its result. On a shared machine wall time also
  counts the time spent waiting for a core; CPU time counts the work.
- `interleave(calls, rounds, repeats)`: every round runs each call in turn, so load on
  the machine hits them alike; a round times `repeats` back-to-back calls and records
  the time per call. The figures are the median over rounds (`Samples.median`), or the
  fastest round (`Samples.best`) for the fixed cost of tiny calls.
- `print_table(header, rows)` and `write_report(path, report)` (JSON, written atomically).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from minigrad.io import atomic


@dataclass(frozen=True)
class Timing:
    """Seconds of wall-clock time and of this process's CPU time."""

    wall: float
    cpu: float


@dataclass
class Samples:
    """One Timing per round, seconds per call."""

    rounds: list[Timing] = field(default_factory=list)

    @property
    def wall(self) -> list[float]:
        return [t.wall for t in self.rounds]

    @property
    def cpu(self) -> list[float]:
        return [t.cpu for t in self.rounds]

    def median(self) -> Timing:
        return Timing(statistics.median(self.wall), statistics.median(self.cpu))

    def best(self) -> Timing:
        return Timing(min(self.wall), min(self.cpu))


def timed(fn: Callable, *args, **kwargs) -> tuple[Timing, object]:
    """The wall and CPU time of one call fn(*args, **kwargs), and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def time_calls(fn: Callable[[], object], repeats: int = 1) -> Timing:
    """Seconds per call over `repeats` back-to-back calls of fn()."""

    def run():
        for _ in range(repeats):
            fn()

    total, _ = timed(run)
    return Timing(total.wall / repeats, total.cpu / repeats)


def interleave(calls: dict[Hashable, Callable[[], object]], rounds: int,
               repeats: int | dict = 1, warmup: int = 1, rotate: bool = False,
               timers: dict | None = None, disable_gc: bool = False) -> dict[Hashable, Samples]:
    """Time each call of `calls` (name -> function of no arguments) in `rounds` rounds.

    repeats: calls per round, one number or one per name. warmup: untimed calls of each
    first (allocations, caches, lazy imports, optimizer state). rotate: start each round
    one name later, so no call always runs right after the same neighbour (PyTorch's
    worker threads spin on for a while after it returns). timers: name -> a function
    (fn, repeats) -> Timing per call, for calls timed another way (CUDA events); the
    others use `time_calls`. disable_gc: no garbage collection inside a timed round, as
    `timeit` does, for the fixed cost of tiny calls."""
    timers = timers or {}
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples = {name: Samples() for name in calls}
    names = list(calls)
    for r in range(rounds):
        shift = r % len(names) if rotate and names else 0
        for name in names[shift:] + names[:shift]:
            n = repeats[name] if isinstance(repeats, dict) else repeats
            with _gc_disabled() if disable_gc else contextlib.nullcontext():
                timing = timers.get(name, time_calls)(calls[name], n)
            samples[name].rounds.append(timing)
    return samples


@contextlib.contextmanager
def _gc_disabled():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def print_table(header: list[str], rows: list[list], labels: int = 1) -> None:
    """Print rows under header in aligned columns: the first `labels` columns (names)
    left-aligned, the others (figures, formatted by the caller) right-aligned."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) if i < labels else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths))).rstrip())


def write_report(path, report: dict) -> Path:
    """Write the benchmark's report as JSON (atomically, creating the folder) and say so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, report)
    print(f"wrote {path}")
    return path
