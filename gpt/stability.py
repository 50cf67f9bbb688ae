"""Surviving instability: an outlier guard that skips the optimizer update of a step whose
loss or gradient norm is far out of line (`--skip-outliers Z`), and the bookkeeping of
rolling back to the last good checkpoint when training diverges anyway
(`--on-divergence rollback`).

The guard keeps running statistics of the loss and of the global gradient norm. They
are exponentially weighted, not an average over the whole run: the loss falls by a
factor of several during training, and all-history statistics would judge a late step
against the high losses of the first ones (a late spike would hide inside a variance
made by the early descent). For the first `RunningStats.window` values the weight is
1/n, which is exactly Welford's running mean and variance; after that it stays at
1/window, so the statistics follow the last ~window steps. Three floats each: a resume
restores them exactly.

A rollback goes back to the newest of the last `ROLLBACK_POINTS` interval checkpoints.
If the run then diverges again, before saving a newer one and no later than the step
that caused the rollback, that checkpoint was no good either (finite weights can already
be doomed): the next rollback goes one further back.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from gpt.monitor import DivergenceError

STATS_WINDOW = 100  # steps the running statistics remember (their 1/weight)
ROLLBACK_POINTS = 3  # checkpoints kept to roll back to, the newest first in line
DIVERGENCE_MODES = ("stop", "rollback")


class RunningStats:
    """Running mean and variance of a stream of numbers.

    With a = max(1/n, 1/window) for the n-th value x and d = x - mean:

        mean += a d,   var = (1 - a) (var + a d^2)

    a = 1/n is Welford's update of the population mean and variance; a = 1/window an
    exponentially weighted mean and variance (West 1979)."""

    def __init__(self, window: int = STATS_WINDOW):
        self.window = window
        self.count, self.mean, self.var = 0, 0.0, 0.0

    def update(self, x: float) -> None:
        self.count += 1
        a = max(1.0 / self.count, 1.0 / self.window)
        d = x - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)

    def z_score(self, x: float) -> float:
        """How many standard deviations x lies above the mean (negative below; inf for a
        non-finite x). The deviation is floored at a millionth of the mean, so a stream
        that has not varied yet does not turn rounding noise into huge scores."""
        if not math.isfinite(x):
            return math.inf
        std = max(math.sqrt(self.var), 1e-6 * abs(self.mean), 1e-12)
        return (x - self.mean) / std

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "var": self.var}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.var = state["count"], state["mean"], state["var"]


@dataclass
class Skip:
    """A step the guard refused to apply: its numbers and why."""

    step: int
    loss: float
    grad_norm: float
    loss_z: float
    grad_norm_z: float

    def record(self) -> dict:
        """The metrics.jsonl event."""
        return {"step": self.step, "event": "outlier_skipped", "loss": self.loss,
                "grad_norm": self.grad_norm, "loss_z": self.loss_z,
                "grad_norm_z": self.grad_norm_z,
                "message": f"step {self.step}: update skipped, loss {self.loss:.4f} "
                           f"(z {self.loss_z:.1f}), gradient norm {self.grad_norm:.4g} "
                           f"(z {self.grad_norm_z:.1f})"}


class OutlierGuard:
    """Decides, per step, whether its update may be applied.

    A step is skipped when its loss or gradient norm is not finite, or (once `warmup`
    steps have been accepted) lies more than `z_max` standard deviations above the
    running mean. Skipped steps do not enter the statistics: one outlier must not widen
    the band that judges the next. `max_in_row` skips in a row mean the run is no longer
    having outliers but diverging: `check` then raises DivergenceError."""

    def __init__(self, z_max: float, warmup: int, max_in_row: int):
        self.z_max, self.warmup, self.max_in_row = z_max, warmup, max_in_row
        self.loss, self.grad_norm = RunningStats(), RunningStats()
        self.skips = 0  # in the whole run
        self.in_row = 0

    def check(self, step: int, loss: float, grad_norm: float) -> Skip | None:
        """None if the step may be applied (its numbers join the statistics), else the
        Skip to log."""
        loss_z, norm_z = self.loss.z_score(loss), self.grad_norm.z_score(grad_norm)
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        warm = self.loss.count >= self.warmup
        if finite and not (warm and max(loss_z, norm_z) > self.z_max):
            self.loss.update(loss)
            self.grad_norm.update(grad_norm)
            self.in_row = 0
            return None
        self.skips += 1
        self.in_row += 1
        return Skip(step, loss, grad_norm, loss_z, norm_z)

    def check_in_row(self, step: int) -> None:
        """Raise DivergenceError after `max_in_row` skipped steps in a row."""
        if self.in_row >= self.max_in_row:
            raise DivergenceError(
                f"step {step}: {self.in_row} updates in a row skipped as outliers "
                f"(--max-skips-in-row {self.max_in_row}); the loss or gradient norm has "
                "left its running range for good: lower --lr or raise --warmup", step)

    def state_dict(self) -> dict:
        return {"loss": self.loss.state_dict(), "grad_norm": self.grad_norm.state_dict(),
                "skips": self.skips, "in_row": self.in_row}

    def load_state_dict(self, state: dict) -> None:
        self.loss.load_state_dict(state["loss"])
        self.grad_norm.load_state_dict(state["grad_norm"])
        self.skips, self.in_row = state["skips"], state["in_row"]


def rollback_point_dir(folder: Path, step: int) -> Path:
    """Where the rollback point of `step` lives: folder/step-00000008."""
    return Path(folder) / f"step-{step:08d}"


def rollback_points(folder: Path) -> list[Path]:
    """The rollback points in `folder`, oldest first."""
    folder = Path(folder)
    return sorted(folder.glob("step-*")) if folder.is_dir() else []


def drop_rollback_points(points: list[Path]) -> None:
    """Delete rollback points (whole checkpoint folders)."""
    for point in points:
        shutil.rmtree(point)


def scale_learning_rate(scheduler, base_lrs: list[float], min_lr: float, scale: float):
    """Set the schedule to `scale` times the base learning rates `base_lrs` (one per param
    group) and `min_lr` (the current lr follows at once). Absolute, not relative to the
    schedule's state: a rollback to an older checkpoint still gets every reduction so far.
    The scaled schedule is part of the scheduler's state, so a checkpoint keeps it."""
    state = scheduler.state_dict()
    state["base_lrs"] = [lr * scale for lr in base_lrs]
    if "min_lr" in state:
        state["min_lr"] = min_lr * scale
    scheduler.load_state_dict(state)
