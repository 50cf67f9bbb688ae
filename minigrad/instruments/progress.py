"""The project's one progress bar (training loops, tokenizer training, data preparation).

    step 1200/3000 [#########...........]  40% | loss 1.92 | 41.2k tok/s | 1:02<1:33
    count 1,234,567 characters | 0:04

On a terminal the line is redrawn in place, at most every `interval` seconds. Into a file,
a pipe or a notebook cell (anything that is not a TTY) each drawn state is a line of its own,
and lines are throttled to one every `file_interval` seconds (plus the first and the last),
so logs hold no carriage returns and no line per step. `write` prints a message above the
bar without tearing it. `total=0` means the amount of work is unknown: a counter, no bar.
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
                 width: int = 20, unit: str = "", interval: float = 0.1,
                 file_interval: float = 30.0):
        self.total, self.done, self.label, self.unit = total, initial, label, unit
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if self.interactive else file_interval
        self.stats: dict = {}
        self._start, self._start_done = time.perf_counter(), initial
        self._line_len = 0
        self._last_draw: float | None = None  # None: nothing drawn yet
        self._drawn_state: tuple | None = None

    def render(self) -> str:
        elapsed = time.perf_counter() - self._start
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            fraction = self.done / self.total
            filled = int(round(fraction * self.width))
            bar = "#" * filled + "." * (self.width - filled)
            parts = [f"{self.label} {self.done}/{self.total}{unit} [{bar}] {fraction:4.0%}"]
        else:
            parts = [f"{self.label} {self.done:,}{unit}"]
        parts += [f"{name.replace('_', ' ')} {format_stat(value)}"
                  for name, value in self.stats.items()]
        if self.total:
            progressed = self.done - self._start_done
            remaining = (self.total - self.done) * elapsed / progressed if progressed else 0.0
            parts.append(f"{format_duration(elapsed)}<{format_duration(remaining)}")
        else:
            parts.append(format_duration(elapsed))
        return " | ".join(parts)

    def update(self, done: int, **stats) -> None:
        """Move to `done` and show `stats` (name=value) beside the bar; drawn when the first,
        the last, or `interval` seconds after the previous drawing."""
        self.done = done
        self.stats.update(stats)
        now = time.perf_counter()
        finished = bool(self.total) and done >= self.total
        if self._drawn_state == (self.done, tuple(self.stats.items())):
            return  # nothing new to show
        if self._last_draw is None or finished or now - self._last_draw >= self.interval:
            self._draw(now)

    def _draw(self, now: float) -> None:
        line = self.render()
        if self.interactive:
            self.stream.write("\r" + line + " " * max(self._line_len - len(line), 0))
            self._line_len = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_draw = now
        self._drawn_state = (self.done, tuple(self.stats.items()))

    def write(self, message: str) -> None:
        """Print a message on its own line, then redraw the bar below it."""
        if self.interactive and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self._line_len = 0
        self.stream.write(message + "\n")
        if self.interactive and self._last_draw is not None:
            self._draw(time.perf_counter())
        else:
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state if throttling held it back, and end the line."""
        if self._last_draw is not None and \
                self._drawn_state != (self.done, tuple(self.stats.items())):
            self._draw(time.perf_counter())
        if self.interactive and self._line_len:
            self.stream.write("\n")
            self.stream.flush()
            self._line_len = 0
