"""softmax(x, axis): exp(x) / sum(exp(x)) along one axis, as one fused node.

Forward, stable for any input size: subtracting the row max m changes nothing
(the factor e^-m cancels) and keeps every exponent <= 0, so exp cannot overflow.
Backward, with y = softmax(x) and upstream gradient g:

    dx_i = sum_j g_j dy_j/dx_i = y_i (g_i - sum_j g_j y_j)

so the backward needs only the output y (saved) and one dot product per row.
A row that is all -inf gives nan, as in PyTorch.
"""

from __future__ import annotations

from minigrad.nn.functional._checks import check_axis, check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import dot_axis, sum_axis
from minigrad.ops._util import dim_alias
from minigrad.tensor import Tensor


class Softmax(FusedFunction):
    name = "softmax"

    def __init__(self, axis: int):
        self.axis = axis

    def array_forward(self, x):
        xp = self.xp
        if x.shape[self.axis] == 0:  # a softmax over no elements: an empty result
            y = xp.zeros_like(x)
        else:
            y = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
            y *= 1.0 / sum_axis(self.device, y, self.axis)
        self.save_for_backward(y)
        return y

    def array_backward(self, g):
        (y,) = self.saved
        dx = g - dot_axis(self.xp, g, y, self.axis)  # g_i - sum_j g_j y_j
        dx *= y
        return dx


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Softmax along `axis` (one graph node; see the module docstring for the math)."""
    axis = dim_alias("softmax", dim, axis, -1)  # PyTorch's dim, or NumPy's axis
    check_floating("softmax", x=x)
    return Softmax(check_axis("softmax", x, axis))(x)


def softmax_composite(x: Tensor, axis: int = -1) -> Tensor:
    """The same softmax from primitive ops, for reading and for testing the fused one."""
    e = shifted_by_max(x, axis).exp()
    return e / e.sum(axis=axis, keepdims=True)


def shifted_by_max(x: Tensor, axis: int) -> Tensor:
    """x minus its row max along `axis`, a constant (detached): it cancels in a softmax
    and keeps every exponent <= 0. An empty axis has no max and needs no shift."""
    if x.ndim and x.shape[axis] == 0:
        return x
    return x - x.amax(dim=axis, keepdim=True).detach()
