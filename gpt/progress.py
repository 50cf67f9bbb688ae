"""A dependency-free progress bar for training loops.

    step 1200/3000 [#########...........]  40% | loss 1.92 | 41.2k tok/s | 1:02<1:33

On a terminal the line is redrawn in place; into a file or pipe each update is a line of
its own. `write` prints a message above the bar without tearing it.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """4.2 -> '0:04', 3725 -> '1:02:05'."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_stat(value) -> str:
    """Short numbers for the bar: 41234.5 -> '41.2k', 0.01234 -> '0.0123', 1.9 -> '1.9'."""
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value / 1e6:.1f}M"
        if abs(value) >= 1e4:
            return f"{value / 1e3:.1f}k"
        return f"{value:.4g}"
    return str(value)


class ProgressBar:
    def __init__(self, total: int, initial: int = 0, label: str = "step", stream=None,
                 width: int = 20):
        self.total, self.done, self.label, self.width = total, initial, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stats: dict = {}
        self._start, self._start_done = time.perf_counter(), initial
        self._line_len = 0

    def render(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"{self.label} {self.done}/{self.total} [{bar}] {fraction:4.0%}"]
        parts += [f"{name.replace('_', ' ')} {format_stat(value)}"
                  for name, value in self.stats.items()]
        elapsed = time.perf_counter() - self._start
        progressed = self.done - self._start_done
        remaining = (self.total - self.done) * elapsed / progressed if progressed else 0.0
        parts.append(f"{format_duration(elapsed)}<{format_duration(remaining)}")
        return " | ".join(parts)

    def update(self, done: int, **stats) -> None:
        """Move to `done` steps and show `stats` (name=value) beside the bar."""
        self.done = done
        self.stats.update(stats)
        self._draw()

    def _draw(self) -> None:
        line = self.render()
        if self.interactive:
            self.stream.write("\r" + line + " " * max(self._line_len - len(line), 0))
            self._line_len = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def write(self, message: str) -> None:
        """Print a message on its own line, then redraw the bar below it."""
        if self.interactive and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self._line_len = 0
        self.stream.write(message + "\n")
        if self.interactive:
            self._draw()
        else:
            self.stream.flush()

    def close(self) -> None:
        if self.interactive and self._line_len:
            self.stream.write("\n")
            self.stream.flush()
            self._line_len = 0
