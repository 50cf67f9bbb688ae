"""`Adam` and `AdamW`: per-coordinate step sizes from running moments of the gradient.

    g = grad (+ weight_decay * p for Adam: L2, coupled to the gradient)
    p = p * (1 - lr * weight_decay)          (AdamW only: decoupled decay)
    m = beta1 * m + (1 - beta1) * g           (computed as m += (1 - beta1)(g - m))
    v = beta2 * v + (1 - beta2) * g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The bias corrections undo the moments' start at zero. This is PyTorch's formulation,
step for step, so trajectories match it to rounding.

The update itself is the device primitive `Device.adamw_update` (one formula, in
`minigrad.backends.device.adamw_step`; one kernel launch per flat buffer on CuPy). Adam
with weight decay adds the L2 term to the gradient first and calls it with no decay.
"""

from __future__ import annotations

from minigrad.optim.optimizer import Optimizer


class Adam(Optimizer):
    state_names = ("exp_avg", "exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, flat: bool | None = None):
        if amsgrad:  # PyTorch's argument order, so a positional True is not taken for `flat`
            raise NotImplementedError(f"{type(self).__name__}: amsgrad=True is not supported")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, flat)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        name = type(self).__name__
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {group['eps']}")

    def update(self, device, param, grad, state, group, step) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if weight_decay and not self.decoupled_weight_decay:
            grad = grad + weight_decay * param  # a new array: never write into a gradient
            weight_decay = 0.0
        device.adamw_update(param, grad, state["exp_avg"], state["exp_avg_sq"], lr, beta1,
                            beta2, eps, weight_decay, step)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the decay shrinks the
    weights directly instead of passing through the adaptive step."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, *, flat: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, flat=flat)
