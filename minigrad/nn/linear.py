"""`Linear`: y = x W^T + b, with W of shape (out_features, in_features)."""

from __future__ import annotations

import math

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module
from minigrad.nn.parameter import new_parameter


class Linear(Module):
    """Initialised as in PyTorch: W and b ~ U(-1/sqrt(in), 1/sqrt(in)), which is
    Kaiming-uniform with a = sqrt(5)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype="float32", generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = new_parameter((out_features, in_features), device, dtype)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if bias:
            self.bias = new_parameter((out_features,), device, dtype)
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound, generator=generator)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
