"""`SGD`: stochastic gradient descent with optional momentum (heavy-ball or Nesterov,
with dampening) and L2 weight decay, with PyTorch's update rule and argument order."""

from __future__ import annotations

from minigrad.optim.optimizer import Optimizer


class SGD(Optimizer):
    """g = grad + weight_decay * p
    buf = momentum * buf + (1 - dampening) * g   (buf_1 = g_1: no dampening on step 1)
    d = g + momentum * buf if nesterov else buf  (d = g without momentum)
    p = p - lr * d
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *,
                 flat: bool | None = None):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults, flat)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening 0")

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
            dampening = group["dampening"] if step > 1 else 0.0
            buf += (1 - dampening) * grad if dampening else grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= lr * grad
