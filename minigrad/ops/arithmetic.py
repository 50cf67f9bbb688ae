"""Arithmetic: add, sub, mul, div, neg, pow, with broadcasting and Python scalars.

Broadcasting in the forward becomes a sum in the backward (`sum_to`). A Python scalar
operand gets its own op (`AddScalar`, ...) so it never becomes a tensor or a graph node.
"""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.ops._util import as_tensor, grad_like, is_scalar, promote_pair, scalar_value
from minigrad.tensor import Tensor


class _Binary(Function):
    """Base of tensor-tensor ops: remembers input shapes and dtypes for `grad_like`."""

    def remember(self, a, b):
        if self.requires_grad:
            self.meta = ((a.shape, a.dtype), (b.shape, b.dtype))

    def to_input(self, i: int, g):
        shape, dtype = self.meta[i]
        return grad_like(self.xp, g, shape, dtype)


class Add(_Binary):
    def forward(self, a, b):
        self.remember(a, b)
        return a + b

    def backward(self, g):
        return self.to_input(0, g), self.to_input(1, g)


class Sub(_Binary):
    def forward(self, a, b):
        self.remember(a, b)
        return a - b

    def backward(self, g):
        return self.to_input(0, g), self.to_input(1, -g)


class Mul(_Binary):
    def forward(self, a, b):
        self.remember(a, b)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        ga = self.to_input(0, g * b) if self.needs_input_grad[0] else None
        gb = self.to_input(1, g * a) if self.needs_input_grad[1] else None
        return ga, gb


class Div(_Binary):
    def forward(self, a, b):
        self.remember(a, b)
        out = a / b
        self.save_for_backward(b, out)
        return out

    def backward(self, g):
        # d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2 = -out/b
        b, out = self.saved
        g_over_b = g / b
        ga = self.to_input(0, g_over_b) if self.needs_input_grad[0] else None
        gb = self.to_input(1, -g_over_b * out) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(_Binary):
    def forward(self, a, b):
        self.remember(a, b)
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        # d(a^b)/da = b a^(b-1), 0 where b == 0 (also at a == 0, as in PyTorch: the
        # exponent there is swapped for 1 to keep 0 * 0^-1 = nan out);
        # d(a^b)/db = a^b log(a), taken as 0 where a == 0 and b >= 0 (as in PyTorch)
        xp = self.xp
        a, b, out = self.saved
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = self.to_input(0, g * b * a ** xp.where(b == 0, xp.ones_like(b), b - 1))
        if self.needs_input_grad[1]:
            zero = a == 0
            log_a = xp.where(zero, xp.full_like(a, -math.inf),
                             xp.log(xp.where(zero, xp.ones_like(a), a)))
            flat = zero & (b >= 0)
            gb = self.to_input(1, xp.where(flat, xp.zeros_like(out), g * out * log_a))
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class AddScalar(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a + self.c

    def backward(self, g):
        return g


class MulScalar(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a * self.c

    def backward(self, g):
        return g * self.c


class DivScalar(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a / self.c

    def backward(self, g):
        return g / self.c


class RSubScalar(Function):
    """c - a"""

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return self.c - a

    def backward(self, g):
        return -g


class RDivScalar(Function):
    """c / a; d/da = -c/a^2 = -out/a"""

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        out = self.c / a
        self.save_for_backward(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        return -g * out / a


class PowScalar(Function):
    """a ** c; d/da = c a^(c-1) (0 for c == 0, also at a == 0)"""

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        self.save_for_backward(a)
        return a**self.c

    def backward(self, g):
        (a,) = self.saved
        c = self.c
        if c == 0:
            return self.xp.zeros_like(g)
        if c == 1:
            return g
        if c == 2:
            return g * (2 * a)
        return g * (c * a ** (c - 1))


class RPowScalar(Function):
    """c ** a; d/da = c^a log(c), taken as 0 where c == 0 and a >= 0 (as in PyTorch:
    0^a is constant 0, or 1 at a == 0, there)"""

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        c = self.c
        out = c**a
        self.log_c = math.log(c) if c > 0 else math.nan
        self.save_for_backward(a if c == 0 else out)
        return out

    def backward(self, g):
        xp = self.xp
        (saved,) = self.saved
        if self.c == 0:  # c^a log(c) = inf * -inf for a < 0
            a = saved
            return g * xp.where(a >= 0, xp.zeros_like(g), xp.full_like(g, -math.inf))
        return g * saved * self.log_c


def add(a, b) -> Tensor:
    if is_scalar(b):
        return AddScalar(scalar_value(b))(a)
    if is_scalar(a):
        return AddScalar(scalar_value(a))(b)
    return Add()(*_tensors(a, b))


def sub(a, b) -> Tensor:
    if is_scalar(b):
        return AddScalar(-scalar_value(b))(a)
    if is_scalar(a):
        return RSubScalar(scalar_value(a))(b)
    return Sub()(*_tensors(a, b))


def rsub(a, b) -> Tensor:
    """b - a (the reflected form of a - b)."""
    return sub(b, a)


def mul(a, b) -> Tensor:
    if is_scalar(b):
        return MulScalar(scalar_value(b))(a)
    if is_scalar(a):
        return MulScalar(scalar_value(a))(b)
    return Mul()(*_tensors(a, b))


def div(a, b) -> Tensor:
    if is_scalar(b):
        return DivScalar(scalar_value(b))(a)
    if is_scalar(a):
        return RDivScalar(scalar_value(a))(b)
    return Div()(*_tensors(a, b))


def rdiv(a, b) -> Tensor:
    """b / a (the reflected form of a / b)."""
    return div(b, a)


def pow(a, b) -> Tensor:
    if is_scalar(b):
        return PowScalar(scalar_value(b))(a)
    if is_scalar(a):
        return RPowScalar(scalar_value(a))(b)
    return Pow()(*_tensors(a, b))


def rpow(a, b) -> Tensor:
    """b ** a (the reflected form of a ** b)."""
    return pow(b, a)


def neg(a: Tensor) -> Tensor:
    return Neg()(a)


def _tensors(a, b) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        if isinstance(b, Tensor) and a.data.dtype is b.data.dtype:
            return a, b  # the common case, checked first: nothing to convert or promote
        b = as_tensor(b, a)
    else:
        a = as_tensor(a, b)
    return promote_pair(a, b)
