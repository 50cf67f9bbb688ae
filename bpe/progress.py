"""Progress reporting for long runs.

A progress callback receives ``(stage, done, total)``: stage ``"count"`` reports characters
of text pre-tokenized so far (``total`` is 0 when the input is an iterator of unknown
length), stage ``"merge"`` reports merges made out of those planned. ``progress=True``
draws them with the project's one progress bar (`minigrad.instruments.progress`) on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[str, int, int], None]


class StderrProgress:
    """Draws the callback's reports with the project's one progress bar (a bar of its own
    for each stage), on stderr unless another stream is given."""

    UNITS = {"count": "characters", "merge": "merges"}

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._stage: str | None = None
        self._bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            # Loaded on first use: `import bpe` stays free of the engine.
            from minigrad.instruments.progress import ProgressBar

            if self._bar is not None:
                self._bar.close()
            self._stage = stage
            self._bar = ProgressBar(total, label=f"[bpe] {stage}:", stream=self._stream,
                                    unit=self.UNITS.get(stage, ""))
        self._bar.total = total
        self._bar.update(done)
        if total and done >= total:
            self._bar.close()


def resolve_progress(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """Turn the ``progress`` option into a callback, or None for no reporting."""
    if progress is True:
        return StderrProgress()
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be a bool or a callable, got {progress!r}")
