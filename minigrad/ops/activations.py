"""Activations: tanh, sigmoid, relu, gelu (exact and tanh approximation), silu."""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.tensor import Tensor

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


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


class GELU(Function):
    """x * Phi(x). approximate='none': Phi by erf; 'tanh': GPT-2's tanh approximation."""

    name = "gelu"
    kernel = None  # the device's fused GELU (`Device.kernels["gelu"]`), if it has one

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, a):
        self.kernel = self.device.kernels.get(self.name)
        if self.kernel is not None:
            return self.kernel.forward(self, a)
        xp = self.xp
        if self.approximate == "tanh":
            # 0.5 x (1 + tanh(u)), u = sqrt(2/pi) x (1 + 0.044715 x^2), computed in place:
            # one temporary instead of one per operator (GELU is a hot op in GPTs)
            u = a * a
            u *= _GELU_CUBIC * _SQRT_2_OVER_PI
            u += _SQRT_2_OVER_PI
            u *= a
            t = xp.tanh(u)
            self.save_for_backward(a, t)
            out = t + 1
            out *= a
            out *= 0.5
            return out
        cdf = 0.5 * (1 + self.device.erf(a * _INV_SQRT_2))
        self.save_for_backward(a, cdf)
        return a * cdf

    def backward(self, g):
        if self.kernel is not None:
            return self.kernel.backward(self, g)
        xp = self.xp
        a, s = self.saved
        if self.approximate == "tanh":
            # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), in place
            d = a * a
            d *= 3 * _GELU_CUBIC * _SQRT_2_OVER_PI
            d += _SQRT_2_OVER_PI  # du/dx
            d *= 1 - s * s
            d *= a
            d += s
            d += 1
            d *= 0.5
            d *= g
            return d
        # d/dx = Phi(x) + x phi(x), phi the standard normal density
        return g * (s + a * _INV_SQRT_2PI * xp.exp(-0.5 * a * a))


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


def gelu(a: Tensor, approximate: str = "none") -> Tensor:
    return GELU(approximate)(a)


def silu(a: Tensor) -> Tensor:
    return SiLU()(a)
