"""Activations: tanh, sigmoid, relu, silu; and erf, which GELU's composite twin is built
from (GELU itself is a fused op: `minigrad.nn.functional.gelu`)."""

from __future__ import annotations

import math

from minigrad.autograd import Function
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


def tanh(a: Tensor) -> Tensor:
    return Tanh()(a)


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid()(a)


def relu(a: Tensor) -> Tensor:
    return ReLU()(a)


def erf(a: Tensor) -> Tensor:
    return Erf()(a)


def silu(a: Tensor) -> Tensor:
    return SiLU()(a)
