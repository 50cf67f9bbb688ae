"""Reductions over an axis (int or tuple) with keepdims: sum, mean, max, min, var,
logsumexp; argmax (no gradient).

Every backward first restores the reduced axes as size-1 dims (`keepdims_shape`), then
broadcasts back to the input's shape.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import keepdims_shape, normalize_axes
from minigrad.tensor import Tensor


class _Reduction(Function):
    op = "reduce"

    def __init__(self, axis, keepdims: bool):
        self.axis, self.keepdims = axis, keepdims

    def setup(self, a):
        self.axes = normalize_axes(self.op, self.axis, a.ndim)
        self.in_shape = a.shape
        self.kept = keepdims_shape(a.shape, self.axes)
        self.count = 1
        for i in self.axes:
            self.count *= a.shape[i]

    def finish(self, out_kept):
        """Reduced result with keepdims=True -> the requested shape."""
        return out_kept if self.keepdims else self.xp.reshape(out_kept, _drop(self.kept,
                                                                                self.axes))

    def expand(self, g):
        """A gradient shaped like the output -> broadcastable to the input (keepdims)."""
        return g if self.keepdims else self.xp.reshape(g, self.kept)


def _drop(shape, axes):
    return tuple(n for i, n in enumerate(shape) if i not in axes)


class Sum(_Reduction):
    op = "sum"

    def forward(self, a):
        self.setup(a)
        return self.xp.sum(a, axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        return self.xp.broadcast_to(self.expand(g), self.in_shape)


class Mean(_Reduction):
    op = "mean"

    def forward(self, a):
        self.setup(a)
        return self.xp.mean(a, axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        return self.xp.broadcast_to(self.expand(g) / self.count, self.in_shape)


class _MaxMin(_Reduction):
    """max / min; the gradient is shared equally among tied extremes (as PyTorch's amax)."""

    def forward(self, a):
        self.setup(a)
        if self.count == 0:
            raise ValueError(f"{self.op}: reduction over an empty axis of shape {a.shape}")
        reduce = self.xp.max if self.op == "max" else self.xp.min
        out_kept = reduce(a, axis=self.axes, keepdims=True)
        self.save_for_backward(a, out_kept)
        return self.finish(out_kept)

    def backward(self, g):
        xp = self.xp
        a, out_kept = self.saved
        hit = xp.astype(a == out_kept, g.dtype)
        share = hit / xp.sum(hit, axis=self.axes, keepdims=True)
        return self.expand(g) * share


class Max(_MaxMin):
    op = "max"


class Min(_MaxMin):
    op = "min"


class Var(_Reduction):
    """sum((a - mean)^2) / (N - correction); d/da = 2 (a - mean) / (N - correction)."""

    op = "var"

    def __init__(self, axis, keepdims: bool, correction: int):
        super().__init__(axis, keepdims)
        self.correction = correction

    def forward(self, a):
        xp = self.xp
        self.setup(a)
        centered = a - xp.mean(a, axis=self.axes, keepdims=True)
        self.denominator = self.count - self.correction
        self.save_for_backward(centered)
        out_kept = xp.sum(centered * centered, axis=self.axes, keepdims=True) / self.denominator
        return self.finish(out_kept)

    def backward(self, g):
        (centered,) = self.saved
        scale = 2.0 / self.denominator if self.denominator > 0 else float("nan")
        return self.expand(g) * scale * centered


class LogSumExp(_Reduction):
    """log(sum(exp(a))), shifted by the max for stability; d/da = softmax(a)."""

    op = name = "logsumexp"

    def forward(self, a):
        xp = self.xp
        self.setup(a)
        shift = (xp.max(a, axis=self.axes, keepdims=True) if self.count
                 else self.device.zeros(self.kept, a.dtype))
        shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
        out_kept = xp.log(xp.sum(xp.exp(a - shift), axis=self.axes, keepdims=True)) + shift
        self.save_for_backward(a, out_kept)
        return self.finish(out_kept)

    def backward(self, g):
        a, out_kept = self.saved
        return self.expand(g) * self.xp.exp(a - out_kept)


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Sum(axis, keepdims)(a)


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Mean(axis, keepdims)(a)


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Max(axis, keepdims)(a)


def min(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Min(axis, keepdims)(a)


def var(a: Tensor, axis=None, keepdims: bool = False, correction: int = 0) -> Tensor:
    """Variance; correction=0 is the population variance, 1 the unbiased estimate."""
    return Var(axis, keepdims, correction)(a)


def logsumexp(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return LogSumExp(axis, keepdims)(a)


def argmax(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the maximum (an integer tensor, no gradient)."""
    out = a.device.xp.argmax(a.data, axis=axis, keepdims=keepdims)
    return Tensor._from_op(out, a.device, None, 0, False)
