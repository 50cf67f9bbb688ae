"""Reductions over dims (an int, a tuple or None for all), PyTorch's way: sum, mean,
prod, amax, amin, max / min (with a dim: values and indices), var, std, norm,
logsumexp; argmax, argmin (no gradient).

Every reduction takes `dim=` and `keepdim=`, with NumPy's `axis=` / `keepdims=` as
aliases (PyTorch accepts both). Every backward first restores the reduced dims as
size-1 dims (`keepdims_shape`), then broadcasts back to the input's shape.
"""

from __future__ import annotations

import builtins
import math
from typing import NamedTuple

from minigrad.autograd import Function
from minigrad.ops._util import (
    dim_alias,
    keepdims_shape,
    normalize_axes,
    normalize_axis,
    require_floating,
    to_floating,
)
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


class Prod(_Reduction):
    """prod(a); d/da_i = prod of the others. With no zero that is out / a_i; a zero at i
    alone gives the product of the others there and 0 elsewhere, two zeros 0 everywhere:
    so the backward divides only where a_i != 0 and recomputes the product with a_i = 1."""

    op = "prod"

    def forward(self, a):
        self.setup(a)
        out_kept = self.xp.prod(a, axis=self.axes, keepdims=True)
        self.save_for_backward(a, out_kept)
        return self.finish(out_kept)

    def backward(self, g):
        xp = self.xp
        a, out_kept = self.saved
        zero = a == 0
        ones = xp.ones_like(a)
        # the product of the others, at zeros: prod with that zero replaced by 1
        others_at_zero = xp.prod(xp.where(zero, ones, a), axis=self.axes, keepdims=True)
        n_zeros = xp.sum(xp.astype(zero, a.dtype), axis=self.axes, keepdims=True)
        at_zero = xp.where(n_zeros == 1, others_at_zero, xp.zeros_like(others_at_zero))
        others = xp.where(zero, at_zero, out_kept / xp.where(zero, ones, a))
        return self.expand(g) * others


class _Extreme(_Reduction):
    """amax / amin; the gradient is shared equally among tied extremes (as PyTorch's)."""

    def forward(self, a):
        self.setup(a)
        if self.count == 0:
            raise ValueError(f"{self.op}: reduction over an empty dim of shape {a.shape}")
        reduce = self.xp.max if self.op == "amax" else self.xp.min
        out_kept = reduce(a, axis=self.axes, keepdims=True)
        self.save_for_backward(a, out_kept)
        return self.finish(out_kept)

    def backward(self, g):
        xp = self.xp
        a, out_kept = self.saved
        hit = xp.astype(a == out_kept, g.dtype)
        share = hit / xp.sum(hit, axis=self.axes, keepdims=True)
        return self.expand(g) * share


class AMax(_Extreme):
    op = name = "amax"


class AMin(_Extreme):
    op = name = "amin"


class Var(_Reduction):
    """sum((a - mean)^2) / max(0, N - correction); d/da = 2 (a - mean) / that.

    A divisor of 0 (correction >= N) gives inf, or nan for a constant input, as in
    PyTorch."""

    op = "var"

    def __init__(self, axis, keepdims: bool, correction):
        super().__init__(axis, keepdims)
        self.correction = correction

    def forward(self, a):
        xp = self.xp
        self.setup(a)
        centered = a - xp.mean(a, axis=self.axes, keepdims=True)
        divisor = builtins.max(0, self.count - self.correction)  # `max` is the op here
        self.inverse = 1.0 / divisor if divisor else math.inf
        squares = xp.sum(centered * centered, axis=self.axes, keepdims=True)
        out_kept = self.take_root(squares * self.inverse)
        self.save_for_backward(centered, out_kept)
        return self.finish(out_kept)

    def take_root(self, variance):
        return variance

    def backward(self, g):
        centered, _ = self.saved
        return self.expand(g) * (2.0 * self.inverse) * centered


class Std(Var):
    """sqrt(var); d/da = d var / (2 std) = (a - mean) / (divisor std)."""

    op = "std"

    def take_root(self, variance):
        return self.xp.sqrt(variance)

    def backward(self, g):
        centered, out_kept = self.saved
        return (self.expand(g) / out_kept) * self.inverse * centered


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


class Norm(_Reduction):
    """The p-norm (sum |a|^p)^(1/p) for p > 0 (p = 2 by default, inf for max |a|);
    d/da = sign(a) |a|^(p-1) / norm^(p-1), taken as 0 where the norm is 0 (as PyTorch)."""

    op = "norm"

    def __init__(self, axis, keepdims: bool, p: float):
        super().__init__(axis, keepdims)
        self.p = p

    def forward(self, a):
        xp, p = self.xp, self.p
        self.setup(a)
        magnitude = xp.abs(a)
        if p == math.inf:
            out_kept = (xp.max(magnitude, axis=self.axes, keepdims=True) if self.count
                        else self.device.zeros(self.kept, a.dtype))
        elif p == 2:
            out_kept = xp.sqrt(xp.sum(a * a, axis=self.axes, keepdims=True))
        else:
            out_kept = xp.sum(magnitude**p, axis=self.axes, keepdims=True) ** (1.0 / p)
        self.save_for_backward(a, out_kept)
        return self.finish(out_kept)

    def backward(self, g):
        xp, p = self.xp, self.p
        a, out_kept = self.saved
        zero = out_kept == 0
        safe = xp.where(zero, xp.ones_like(out_kept), out_kept)
        if p == math.inf:  # shared equally among the tied largest |a_i|
            hit = xp.astype(xp.abs(a) == out_kept, a.dtype)
            local = xp.sign(a) * hit / xp.sum(hit, axis=self.axes, keepdims=True)
        elif p == 2:
            local = a / safe
        else:
            local = xp.sign(a) * (xp.abs(a) / safe) ** (p - 1)
        return xp.where(zero, xp.zeros_like(local), local) * self.expand(g)


def _dims(op: str, dim, keepdim, axis, keepdims) -> tuple:
    """(dim, keepdim) from PyTorch's names or their NumPy aliases axis= / keepdims=."""
    dim = dim_alias(op, dim, axis)
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim if keepdims is None else keepdims)


def sum(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    return Sum(*_dims("sum", dim, keepdim, axis, keepdims))(a)


def mean(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    require_floating("mean", a)
    return Mean(*_dims("mean", dim, keepdim, axis, keepdims))(a)


def prod(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    return Prod(*_dims("prod", dim, keepdim, axis, keepdims))(a)


def amax(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """The largest value over `dim` (all dims by default); ties share the gradient."""
    return AMax(*_dims("amax", dim, keepdim, axis, keepdims))(a)


def amin(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    return AMin(*_dims("amin", dim, keepdim, axis, keepdims))(a)


class ValuesIndices(NamedTuple):
    """What max / min / sort / topk over a dim return, as PyTorch's `torch.return_types`."""

    values: Tensor
    indices: Tensor


def max(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    """PyTorch's max: without dim the largest value (amax); with an int dim the pair
    (values, indices) along it, the gradient going to the first largest element; with a
    Tensor `dim`, the elementwise `maximum`."""
    return _max_min("max", a, dim, keepdim, axis, keepdims)


def min(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    """PyTorch's min (see `max`)."""
    return _max_min("min", a, dim, keepdim, axis, keepdims)


def _max_min(op, a, dim, keepdim, axis, keepdims):
    from minigrad.ops.indexing import take_along_dim
    from minigrad.ops.unary import maximum, minimum

    if isinstance(dim, Tensor):
        return (maximum if op == "max" else minimum)(a, dim)
    dim, keepdim = _dims(op, dim, keepdim, axis, keepdims)
    if dim is None:
        return (amax if op == "max" else amin)(a)
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int for (values, indices), got {dim!r}; "
                        f"use a{op}(dim=...) for the values over several dims")
    dim = normalize_axis(op, dim, a.ndim) if a.ndim else 0
    indices = (argmax if op == "max" else argmin)(a, dim, keepdim=True)
    values = take_along_dim(a, indices, dim) if a.ndim else a.reshape(())
    if not keepdim and a.ndim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return ValuesIndices(values, indices)


def var(a: Tensor, dim=None, *, correction=1, keepdim: bool = False, axis=None,
        keepdims=None, unbiased: bool | None = None) -> Tensor:
    """Variance with PyTorch's default correction=1 (the unbiased estimate); correction=0
    is the population variance (`unbiased=False` is its old name)."""
    dim, keepdim = _dims("var", dim, keepdim, axis, keepdims)
    require_floating("var", a)
    return Var(dim, keepdim, _correction(correction, unbiased))(a)


def std(a: Tensor, dim=None, *, correction=1, keepdim: bool = False, axis=None,
        keepdims=None, unbiased: bool | None = None) -> Tensor:
    """Standard deviation, sqrt(var) with the same correction (default 1)."""
    dim, keepdim = _dims("std", dim, keepdim, axis, keepdims)
    require_floating("std", a)
    return Std(dim, keepdim, _correction(correction, unbiased))(a)


def _correction(correction, unbiased):
    return correction if unbiased is None else int(bool(unbiased))


def norm(a: Tensor, p=2, dim=None, keepdim: bool = False, *, axis=None,
         keepdims=None) -> Tensor:
    """The vector p-norm over `dim` (all elements by default): p > 0 or inf."""
    p = float(p) if p != "fro" else 2.0
    if not p > 0:
        raise ValueError(f"norm: p must be positive (or inf), got {p}")
    return Norm(*_dims("norm", dim, keepdim, axis, keepdims), p)(a)


def logsumexp(a: Tensor, dim=None, keepdim: bool = False, *, axis=None,
              keepdims=None) -> Tensor:
    return LogSumExp(*_dims("logsumexp", dim, keepdim, axis, keepdims))(to_floating(a))


def argmax(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the (first) maximum, over the flattened tensor without dim (an integer
    tensor, no gradient)."""
    return _arg("argmax", a, *_dims("argmax", dim, keepdim, axis, keepdims))


def argmin(a: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    return _arg("argmin", a, *_dims("argmin", dim, keepdim, axis, keepdims))


def _arg(op: str, a: Tensor, dim, keepdim: bool) -> Tensor:
    xp = a.device.xp
    data = a.data
    if dim is None:
        data, dim = xp.reshape(data, (-1,)), 0
        if keepdim:
            out = getattr(xp, op)(data, axis=0)
            return Tensor._from_op(xp.reshape(out, (1,) * a.ndim), a.device, None, 0, False)
    elif a.ndim:
        dim = normalize_axis(op, dim, a.ndim)
    else:  # a 0-d tensor: its one element
        data, dim = xp.reshape(data, (1,)), 0
        keepdim = False
    if data.shape[dim] == 0:
        raise ValueError(f"{op}: over an empty dim of shape {a.shape}")
    out = getattr(xp, op)(data, axis=dim, keepdims=keepdim)
    return Tensor._from_op(out, a.device, None, 0, False)
