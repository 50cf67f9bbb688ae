"""gelu(x, approximate): x Phi(x), the Gaussian error linear unit, as one fused node.

Phi is the standard normal CDF (Hendrycks & Gimpel 2016); approximate='tanh' is GPT-2's
approximation of it (PyTorch's two options):

    none:  y = x Phi(x),        Phi(x) = (1 + erf(x / sqrt 2)) / 2
           dy/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    tanh:  y = x h,   h = (1 + t) / 2,   t = tanh(sqrt(2/pi) (x + 0.044715 x^3))
           dy/dx = h + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2
                 = h + 2 x h (1 - h) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

(1 - t^2 = 4 h (1 - h).) Saved: x and Phi(x) (or h). The constants below are the only
copy: the NumPy device's blocked kernel and the CUDA kernel (compiled with them as
defines) read them from here.
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.ops.activations import erf
from minigrad.tensor import Tensor

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
APPROXIMATIONS = ("none", "tanh")


class GELU(FusedFunction):
    name = "gelu"

    def __init__(self, approximate: str):
        self.approximate = approximate

    def array_forward(self, a):
        xp = self.xp
        if self.approximate == "tanh":
            # x h, h = (1 + tanh(u)) / 2, u = sqrt(2/pi) x (1 + 0.044715 x^2), computed in
            # place: one temporary instead of one per operator (GELU is a hot op in GPTs)
            u = a * a
            u *= GELU_CUBIC * SQRT_2_OVER_PI
            u += SQRT_2_OVER_PI
            u *= a
            h = xp.tanh(u)
            h += 1
            h *= 0.5
            self.save_for_backward(a, h)
            return a * h
        cdf = 0.5 * (1 + self.device.erf(a * INV_SQRT_2))
        self.save_for_backward(a, cdf)
        return a * cdf

    def array_backward(self, g):
        xp = self.xp
        a, s = self.saved
        if self.approximate == "tanh":
            # d/dx = h + 2 x h (1 - h) sqrt(2/pi) (1 + 3 * 0.044715 x^2), in place
            d = a * a
            d *= 6 * GELU_CUBIC * SQRT_2_OVER_PI
            d += 2 * SQRT_2_OVER_PI  # 2 du/dx
            d *= a
            d *= s * (1 - s)
            d += s
            d *= g
            return d
        # d/dx = Phi(x) + x phi(x), phi the standard normal density
        return g * (s + a * INV_SQRT_2PI * xp.exp(-0.5 * a * a))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU of x; approximate: 'none' (erf, exact) or 'tanh' (see the module docstring)."""
    _check_arguments("gelu", x, approximate)
    return GELU(approximate)(x)


def gelu_composite(x: Tensor, approximate: str = "none") -> Tensor:
    """The same from primitive ops (erf or tanh, products, sums)."""
    _check_arguments("gelu_composite", x, approximate)
    if approximate == "tanh":
        return 0.5 * x * (1 + (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh())
    return 0.5 * x * (1 + erf(x * INV_SQRT_2))


def _check_arguments(op: str, x, approximate) -> None:
    check_floating(op, x=x)
    if approximate not in APPROXIMATIONS:
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")
