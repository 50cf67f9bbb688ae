"""Progress reporting for long runs.

A progress callback receives ``(stage, done, total)``: stage ``"count"`` reports characters
of text pre-tokenized so far (``total`` is 0 when the input is an iterator of unknown
length), stage ``"merge"`` reports merges made out of those planned. ``progress=True``
prints a throttled status line to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[str, int, int], None]


class StderrProgress:
    """Prints one status line, rewritten in place at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.5) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._last_print = 0.0
        self._started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        finished = total > 0 and done >= total
        if not finished and now - self._last_print < self._interval:
            return
        self._last_print = now
        amount = f"{done}/{total}" if total else f"{done:,}"
        unit = "merges" if stage == "merge" else "characters"
        line = f"\r[bpe] {stage}: {amount} {unit} ({now - self._started:.1f}s)"
        self._stream.write(line + ("\n" if finished else ""))
        self._stream.flush()


def resolve_progress(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """Turn the ``progress`` option into a callback, or None for no reporting."""
    if progress is True:
        return StderrProgress()
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be a bool or a callable, got {progress!r}")
