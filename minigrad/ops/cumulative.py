"""Running sums along a dim: cumsum.

out_i = sum_{j <= i} a_j, so dL/da_j = sum_{i >= j} g_i: the running sum of g taken
from the end (flip, cumsum, flip)."""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import normalize_axis
from minigrad.tensor import Tensor


class CumSum(Function):
    name = "cumsum"

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, a):
        return self.xp.cumulative_sum(a, axis=self.dim)

    def backward(self, g):
        xp = self.xp
        reverse = xp.flip(g, axis=self.dim)
        return xp.flip(xp.cumulative_sum(reverse, axis=self.dim), axis=self.dim)


def cumsum(a: Tensor, dim: int) -> Tensor:
    if a.ndim == 0:
        return CumSum(0)(a.reshape((1,))).reshape(())
    return CumSum(normalize_axis("cumsum", dim, a.ndim))(a)
