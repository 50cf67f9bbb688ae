"""Elementwise math: exp, log, sqrt, rsqrt, square, log1p, expm1, sin, cos, abs, sign,
clip, maximum, minimum."""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import (
    as_tensor,
    grad_like,
    is_scalar,
    promote_pair,
    scalar_value,
    to_floating,
)
from minigrad.tensor import Tensor


class Exp(Function):
    def forward(self, a):
        out = self.xp.exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return g * out


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.log(a)

    def backward(self, g):
        (a,) = self.saved
        return g / a


class Sqrt(Function):
    def forward(self, a):
        out = self.xp.sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # d sqrt(a) = 1 / (2 sqrt(a))
        (out,) = self.saved
        return g / (2 * out)


class Rsqrt(Function):
    def forward(self, a):
        out = 1.0 / self.xp.sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # d a^(-1/2) = -1/2 a^(-3/2) = -out^3 / 2
        (out,) = self.saved
        return g * (-0.5 * out * out * out)


class Square(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return a * a

    def backward(self, g):
        (a,) = self.saved
        return g * (2 * a)


class Log1p(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.log1p(a)

    def backward(self, g):
        # d log(1 + a) = 1 / (1 + a)
        (a,) = self.saved
        return g / (1 + a)


class Expm1(Function):
    def forward(self, a):
        out = self.xp.expm1(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # d (e^a - 1) = e^a = out + 1
        (out,) = self.saved
        return g * (out + 1)


class Sign(Function):
    """-1, 0 or 1; piecewise constant, so the gradient is 0 (as in PyTorch)."""

    def forward(self, a):
        return self.xp.sign(a)

    def backward(self, g):
        return self.xp.zeros_like(g)


class Sin(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.sin(a)

    def backward(self, g):
        # d sin(a) = cos(a)
        (a,) = self.saved
        return g * self.xp.cos(a)


class Cos(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.cos(a)

    def backward(self, g):
        # d cos(a) = -sin(a)
        (a,) = self.saved
        return -(g * self.xp.sin(a))


class Abs(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.abs(a)

    def backward(self, g):
        # sign(0) = 0: the subgradient PyTorch uses
        (a,) = self.saved
        return g * self.xp.sign(a)


class Clip(Function):
    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.clip(a, min=self.low, max=self.high)

    def backward(self, g):
        # The gradient passes where low <= a <= high (both ends included, as in PyTorch).
        (a,) = self.saved
        inside = None
        if self.low is not None:
            inside = a >= self.low
        if self.high is not None:
            below = a <= self.high
            inside = below if inside is None else inside & below
        return g if inside is None else self.xp.where(inside, g, self.xp.zeros_like(g))


class _Extremum(Function):
    """maximum / minimum; on ties the gradient is split equally (as in PyTorch)."""

    pick = None  # "maximum" or "minimum"

    def forward(self, a, b):
        self.meta = ((a.shape, a.dtype), (b.shape, b.dtype))
        self.save_for_backward(a, b)
        return getattr(self.xp, self.pick)(a, b)

    def backward(self, g):
        xp = self.xp
        a, b = self.saved
        wins = a > b if self.pick == "maximum" else a < b
        tie = a == b
        zero = xp.zeros_like(g)
        half = g * 0.5
        ga = xp.where(wins, g, xp.where(tie, half, zero))
        gb = xp.where(wins, zero, xp.where(tie, half, g))
        return (grad_like(xp, ga, *self.meta[0]), grad_like(xp, gb, *self.meta[1]))


class Maximum(_Extremum):
    pick = "maximum"


class Minimum(_Extremum):
    pick = "minimum"


def exp(a: Tensor) -> Tensor:
    return Exp()(to_floating(a))


def log(a: Tensor) -> Tensor:
    return Log()(to_floating(a))


def sqrt(a: Tensor) -> Tensor:
    return Sqrt()(to_floating(a))


def rsqrt(a: Tensor) -> Tensor:
    return Rsqrt()(to_floating(a))


def square(a: Tensor) -> Tensor:
    return Square()(a)


def log1p(a: Tensor) -> Tensor:
    return Log1p()(to_floating(a))


def expm1(a: Tensor) -> Tensor:
    return Expm1()(to_floating(a))


def sign(a: Tensor) -> Tensor:
    return Sign()(a)


def sin(a: Tensor) -> Tensor:
    return Sin()(to_floating(a))


def cos(a: Tensor) -> Tensor:
    return Cos()(to_floating(a))


def abs(a: Tensor) -> Tensor:
    return Abs()(a)


def clip(a: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clip_by_tensors(a, min, max)
    return Clip(None if min is None else scalar_value(min),
                None if max is None else scalar_value(max))(a)


def _clip_by_tensors(a: Tensor, low, high) -> Tensor:
    """clip with tensor bounds (broadcast), as two `where`s: like PyTorch, the gradient
    goes to a where low <= a <= high, to low where a < low, to high where the result
    would exceed high (high wins when low > high)."""
    from minigrad.ops.indexing import where

    out = a
    if low is not None:
        out = where(out < low, low, out)
    if high is not None:
        out = where(out > high, high, out)
    return out


def maximum(a, b) -> Tensor:
    return _extremum(Maximum, a, b)


def minimum(a, b) -> Tensor:
    return _extremum(Minimum, a, b)


def _extremum(cls, a, b) -> Tensor:
    if is_scalar(a):
        a, b = b, a
    return cls()(*promote_pair(a, as_tensor(b, a)))
