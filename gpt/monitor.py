"""Health checks the trainer runs on the per-step numbers it fetches from the device:
loss spikes (reported, the run goes on) and non-finite losses, gradient norms or parameters
(the run stops, or rolls back, before a poisoned state can be checkpointed)."""

from __future__ import annotations

import math


class DivergenceError(RuntimeError):
    """Training left the rails at `step` (a non-finite number, or too many outliers in a
    row): the run stops, or rolls back with --on-divergence rollback."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class NonFiniteError(DivergenceError):
    """The loss, the gradient norm or a parameter became NaN or infinite."""


def check_finite(step: int, loss: float, grad_norm: float) -> None:
    """Raise NonFiniteError naming the step and what went wrong first."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    if not math.isfinite(loss):
        what = f"the loss is {loss}"
        hint = ("the forward pass overflowed: lower --lr, raise --warmup, or check the data "
                "and the model's dtype")
    else:
        what = f"the loss is {loss:.4f} but the gradient norm is {grad_norm}"
        hint = ("the backward pass overflowed: lower --lr or set --grad-clip (a non-finite "
                "gradient cannot be clipped)")
    raise NonFiniteError(f"step {step}: {what}; {hint}", step)


class SpikeDetector:
    """A spike is a step whose loss exceeds the running average of the steps before it by
    more than `threshold` (relative). The average is exponential (weight `beta` on the
    past) and spikes are only looked for after `warmup` steps, once it has settled."""

    def __init__(self, threshold: float = 0.3, beta: float = 0.9, warmup: int = 20):
        self.threshold, self.beta, self.warmup = threshold, beta, warmup
        self.average: float | None = None
        self.seen = 0

    def observe(self, step: int, loss: float) -> str | None:
        """Feed one step's loss; returns a message if it is a spike."""
        message = None
        if (self.average is not None and self.seen >= self.warmup
                and loss > self.average * (1 + self.threshold)):
            message = (f"loss spike at step {step}: {loss:.4f} is "
                       f"{loss / self.average - 1:.0%} above the recent average "
                       f"{self.average:.4f}")
        self.average = loss if self.average is None else (
            self.beta * self.average + (1 - self.beta) * loss)
        self.seen += 1
        return message

    def state_dict(self) -> dict:
        return {"average": self.average, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.average, self.seen = state["average"], state["seen"]
