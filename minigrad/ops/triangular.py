"""Triangular parts of matrices: tril and triu, on the last two axes (batched before).

`diagonal` shifts the kept border as in PyTorch: 0 is the main diagonal, k > 0 the k-th
diagonal above it, k < 0 below it. Both are masks, so each backward applies the same
mask to the gradient. They also build the causal mask of attention (`ones(T, T).tril()`).
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.tensor import Tensor


class _Triangle(Function):
    """Keep a[..., i, j] where j - i <= diagonal (tril) or >= diagonal (triu), zero elsewhere."""

    part = None  # "tril" or "triu", the array-API function

    def __init__(self, diagonal: int):
        self.diagonal = diagonal

    def forward(self, a):
        return getattr(self.xp, self.part)(a, k=self.diagonal)

    def backward(self, g):
        # out = mask * a, so the gradient takes the same mask
        return getattr(self.xp, self.part)(g, k=self.diagonal)


class Tril(_Triangle):
    part = "tril"


class Triu(_Triangle):
    part = "triu"


def tril(a: Tensor, diagonal: int = 0) -> Tensor:
    return Tril(_checked(a, "tril", diagonal))(a)


def triu(a: Tensor, diagonal: int = 0) -> Tensor:
    return Triu(_checked(a, "triu", diagonal))(a)


def _checked(a: Tensor, op: str, diagonal) -> int:
    if a.ndim < 2:
        raise ValueError(f"{op}: needs a tensor with at least 2 dims, got shape {a.shape}")
    if isinstance(diagonal, bool) or not isinstance(diagonal, int):
        raise TypeError(f"{op}: diagonal must be an int, got {diagonal!r}")
    return diagonal
