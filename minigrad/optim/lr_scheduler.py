"""Learning-rate schedules: each sets every param group's "lr" from its base lr and the
number of `step()` calls so far, by a closed form (also available as a pure function).

Usage, as in PyTorch: build the scheduler after the optimizer (it sets the step-0 lr at
once), then call `scheduler.step()` after each `optimizer.step()`. Lrs are Python floats,
so scheduling never touches the device.
"""

from __future__ import annotations

import math


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                     min_lr: float) -> float:
    """Linear warmup to base_lr over `warmup_steps` (base_lr * (step + 1) / warmup_steps,
    so step 0 already moves), then cosine decay from base_lr at step=warmup_steps down to
    min_lr at step=total_steps, and min_lr after."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


def linear_decay_lr(step: int, base_lr: float, total_steps: int, min_lr: float = 0.0,
                    warmup_steps: int = 0) -> float:
    """Linear warmup as in `warmup_cosine_lr`, then a straight line from base_lr at
    step=warmup_steps to min_lr at step=total_steps, and min_lr after."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr + progress * (min_lr - base_lr)


class LRScheduler:
    """Base class: subclasses define `lr_at(step, base_lr, group_index)`."""

    _not_saved: tuple = ()  # attributes state_dict leaves out (functions)

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int, base_lr: float, group_index: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        self._last_lr = [self.lr_at(self.last_step, base, i)
                         for i, base in enumerate(self.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The lr of each param group as last set."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The schedule's numbers (JSON-serialisable; functions are not saved)."""
        return {k: v for k, v in vars(self).items()
                if k not in ("optimizer", "_last_lr", *self._not_saved)}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()


def _check_steps(name: str, warmup_steps: int, total_steps: int) -> None:
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"{name}: need 0 <= warmup_steps < total_steps, got "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")


class Constant(LRScheduler):
    """lr = base_lr * factor for the first `total_steps` steps, base_lr after (PyTorch's
    ConstantLR); the defaults keep lr constant."""

    def __init__(self, optimizer, factor: float = 1.0, total_steps: int = 0):
        self.factor, self.total_steps = factor, total_steps
        super().__init__(optimizer)

    def lr_at(self, step, base_lr, group_index):
        return base_lr * self.factor if step < self.total_steps else base_lr


class WarmupCosine(LRScheduler):
    """`warmup_cosine_lr` for each group (its lr at construction is its base_lr)."""

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        _check_steps("WarmupCosine", warmup_steps, total_steps)
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, step, base_lr, group_index):
        return warmup_cosine_lr(step, base_lr, self.warmup_steps, self.total_steps, self.min_lr)


class LinearDecay(LRScheduler):
    """`linear_decay_lr` for each group (its lr at construction is its base_lr)."""

    def __init__(self, optimizer, total_steps: int, min_lr: float = 0.0, warmup_steps: int = 0):
        _check_steps("LinearDecay", warmup_steps, total_steps)
        self.total_steps, self.min_lr, self.warmup_steps = total_steps, min_lr, warmup_steps
        super().__init__(optimizer)

    def lr_at(self, step, base_lr, group_index):
        return linear_decay_lr(step, base_lr, self.total_steps, self.min_lr, self.warmup_steps)


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(step); `lr_lambda` may be a list with one function per
    group."""

    _not_saved = ("fns",)

    def __init__(self, optimizer, lr_lambda):
        n = len(optimizer.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, list | tuple) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"LambdaLR: {len(fns)} functions for {n} param groups")
        self.fns = fns
        super().__init__(optimizer)

    def lr_at(self, step, base_lr, group_index):
        return base_lr * self.fns[group_index](step)
