"""Activations: tanh, sigmoid, relu, silu, softplus, leaky_relu, elu, logsigmoid, glu;
and erf, which GELU's composite twin is built from (GELU itself is a fused op:
`minigrad.nn.functional.gelu`)."""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.ops._util import to_floating
from minigrad.tensor import Tensor

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def stable_sigmoid(xp, a):
    """1 / (1 + e^-a) without overflow: uses e^-|a| on both sides of zero."""
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Tanh(Function):
    def forward(self, a):
        out = self.xp.tanh(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # d tanh = 1 - tanh^2
        (out,) = self.saved
        return g * (1 - out * out)


class Sigmoid(Function):
    def forward(self, a):
        out = stable_sigmoid(self.xp, a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # d sigmoid = s (1 - s)
        (out,) = self.saved
        return g * out * (1 - out)


class ReLU(Function):
    name = "relu"

    def forward(self, a):
        out = self.xp.maximum(a, 0)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        # subgradient 0 at a == 0, as in PyTorch
        (out,) = self.saved
        return self.xp.where(out > 0, g, self.xp.zeros_like(g))


class Erf(Function):
    """erf(x), the error function (the device's `erf` primitive)."""

    def forward(self, a):
        self.save_for_backward(a)
        return self.device.erf(a)

    def backward(self, g):
        # d erf(x) = 2 / sqrt(pi) exp(-x^2)
        (a,) = self.saved
        return g * (_TWO_OVER_SQRT_PI * self.xp.exp(-(a * a)))


class SiLU(Function):
    name = "silu"

    def forward(self, a):
        s = stable_sigmoid(self.xp, a)
        self.save_for_backward(a, s)
        return a * s

    def backward(self, g):
        # d (x s(x)) = s (1 + x (1 - s))
        a, s = self.saved
        return g * s * (1 + a * (1 - s))


def stable_softplus(xp, a):
    """log(1 + e^a) = max(a, 0) + log1p(e^-|a|), which never overflows."""
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


class Softplus(Function):
    """log(1 + e^(beta a)) / beta, linear (a itself) where beta a > threshold, as in
    PyTorch; d/da = sigmoid(beta a) (1 there)."""

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold

    def forward(self, a):
        xp = self.xp
        scaled = a * self.beta
        linear = scaled > self.threshold
        self.save_for_backward(scaled, linear)
        return xp.where(linear, a, stable_softplus(xp, scaled) / self.beta)

    def backward(self, g):
        scaled, linear = self.saved
        return self.xp.where(linear, g, g * stable_sigmoid(self.xp, scaled))


class LeakyReLU(Function):
    """a for a > 0, slope a otherwise (the gradient at 0 is the slope, as in PyTorch)."""

    name = "leaky_relu"

    def __init__(self, slope: float):
        self.slope = slope

    def forward(self, a):
        positive = a > 0
        self.save_for_backward(positive)
        return self.xp.where(positive, a, a * self.slope)

    def backward(self, g):
        (positive,) = self.saved
        return self.xp.where(positive, g, g * self.slope)


class ELU(Function):
    """a for a > 0, alpha (e^a - 1) otherwise; d/da = 1, or alpha e^a = out + alpha."""

    name = "elu"

    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, a):
        xp = self.xp
        positive = a > 0
        out = xp.where(positive, a, self.alpha * xp.expm1(xp.where(positive, 0, a)))
        self.save_for_backward(positive, out)
        return out

    def backward(self, g):
        positive, out = self.saved
        return self.xp.where(positive, g, g * (out + self.alpha))


class LogSigmoid(Function):
    """log sigmoid(a) = -softplus(-a); d/da = 1 - sigmoid(a) = sigmoid(-a)."""

    def forward(self, a):
        self.save_for_backward(a)
        return -stable_softplus(self.xp, -a)

    def backward(self, g):
        (a,) = self.saved
        return g * stable_sigmoid(self.xp, -a)


def tanh(a: Tensor) -> Tensor:
    return Tanh()(to_floating(a))


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid()(to_floating(a))


def relu(a: Tensor) -> Tensor:
    return ReLU()(a)


def erf(a: Tensor) -> Tensor:
    return Erf()(to_floating(a))


def silu(a: Tensor) -> Tensor:
    return SiLU()(a)


def softplus(a: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus(float(beta), float(threshold))(a)


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU(float(negative_slope))(a)


def elu(a: Tensor, alpha: float = 1.0) -> Tensor:
    return ELU(float(alpha))(a)


def logsigmoid(a: Tensor) -> Tensor:
    return LogSigmoid()(a)


def glu(a: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: the first half of dim times sigmoid of the second half (built
    from split, sigmoid and mul, whose backwards make its own)."""
    from minigrad.ops.join import split

    n = a.shape[dim] if a.ndim else 0
    if n % 2:
        raise ValueError(f"glu: dim {dim} of shape {a.shape} must have an even length")
    first, second = split(a, n // 2, dim)
    return first * sigmoid(second)
