"""`SGD`: stochastic gradient descent with optional momentum (heavy-ball or Nesterov)
and L2 weight decay, with PyTorch's update rule (dampening 0)."""

from __future__ import annotations

from minigrad.optim.optimizer import Optimizer


class SGD(Optimizer):
    """g = grad + weight_decay * p
    buf = momentum * buf + g                     (buf starts at 0, so buf_1 = g_1)
    d = g + momentum * buf if nesterov else buf  (d = g without momentum)
    p = p - lr * d
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, flat: bool | None = None):
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov,
                    "weight_decay": weight_decay}
        super().__init__(params, defaults, flat)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    @property
    def state_names(self) -> tuple:
        # Plain SGD keeps nothing per parameter but the step count.
        return ("momentum_buffer",) if any(g["momentum"] for g in self.param_groups) else ()

    def update(self, device, param, grad, state, group, step) -> None:
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if weight_decay:
            grad = grad + weight_decay * param  # a new array: never write into a gradient
        if momentum:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= lr * grad
