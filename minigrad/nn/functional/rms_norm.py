"""rms_norm(x, normalized_shape, weight, eps): scale each row of the last dims to unit
root-mean-square, then by a weight, as one fused node (RMSNorm, Zhang & Sennrich 2019).

With D the normalised size, per row: r = 1 / sqrt(mean(x^2) + eps), xhat = x r,
y = xhat w. Backward, with gx = g w (or g without weight):

    dx = r (gx - xhat mean(gx xhat)),   dw = sum over rows of g xhat

Only x (the input, alive anyway) and r (one number per row) are saved.
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating, check_normalized_shape
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import dot_axis
from minigrad.tensor import Tensor


class RmsNorm(FusedFunction):
    name = "rms_norm"

    def __init__(self, normalized_shape: tuple, eps: float, has_weight: bool):
        self.normalized_shape, self.eps = normalized_shape, eps
        self.size = math.prod(normalized_shape)
        self.inv_size = 1.0 / self.size if self.size else 0.0  # no elements: empty rows
        self.has_weight = has_weight

    def array_forward(self, x, *params):
        xp = self.xp
        rows = math.prod(x.shape[:x.ndim - len(self.normalized_shape)])
        x2 = xp.reshape(x, (rows, self.size))  # (N, D)
        r = 1.0 / xp.sqrt(dot_axis(xp, x2, x2, 1) * self.inv_size + self.eps)  # (N, 1)
        y = x2 * r
        if self.has_weight:
            y *= xp.reshape(params[0], (self.size,))
        self.save_for_backward(x2, r, params[0] if self.has_weight else None)
        return xp.reshape(y, x.shape)

    def array_backward(self, g):
        xp, need = self.xp, self.needs_input_grad
        x2, r, weight = self.saved
        g2 = xp.reshape(g, x2.shape)  # (N, D)
        xhat = x2 * r
        grads = [None] * len(need)
        if self.has_weight and need[1]:
            grads[1] = xp.reshape(xp.sum(g2 * xhat, axis=0), self.normalized_shape)
        if need[0]:
            gx = g2 * xp.reshape(weight, (self.size,)) if self.has_weight else g2
            xhat *= dot_axis(xp, gx, xhat, 1) * self.inv_size  # xhat mean(gx xhat)
            dx = gx - xhat
            dx *= r
            grads[0] = xp.reshape(dx, g.shape)
        return tuple(grads)


def rms_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float = 1e-6) -> Tensor:
    """RMS normalisation over the trailing `normalized_shape` dims of x (an int or a
    tuple), with an optional elementwise weight of that shape."""
    check_floating("rms_norm", x=x, weight=weight)
    shape = check_normalized_shape("rms_norm", x, normalized_shape, weight=weight)
    fn = RmsNorm(shape, float(eps), weight is not None)
    return fn(x, weight) if weight is not None else fn(x)


def rms_norm_composite(x: Tensor, normalized_shape, weight: Tensor | None = None,
                       eps: float = 1e-6) -> Tensor:
    """The same from primitive ops."""
    shape = check_normalized_shape("rms_norm_composite", x, normalized_shape, weight=weight)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = x / ((x * x).mean(axis=axes, keepdims=True) + eps).sqrt()
    return y * weight if weight is not None else y
