"""log_softmax(x, axis): x - logsumexp(x) along one axis, as one fused node.

Forward: with m the row max, log sum_j e^x_j = m + log sum_j e^(x_j - m), where every
exponent is <= 0 (no overflow) and the largest term is 1 (the log never sees 0).
Backward, with p = softmax(x) = e^y:

    dx_i = g_i - p_i sum_j g_j

The forward has p at the cost of one multiply (the e^(x - m) it sums, scaled), so it
saves p rather than y: the backward then needs no exp. (Usually the consumer of y, such
as a gather of the targets' log-probabilities, keeps nothing, so this costs no memory.)
A row that is all -inf gives nan, as in PyTorch.
"""

from __future__ import annotations

from minigrad.nn.functional._checks import check_axis, check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import sum_axis
from minigrad.tensor import Tensor


class LogSoftmax(FusedFunction):
    def __init__(self, axis: int):
        self.axis = axis

    def array_forward(self, x):
        xp = self.xp
        y = x - xp.max(x, axis=self.axis, keepdims=True)
        p = xp.exp(y)
        total = sum_axis(self.device, p, self.axis)
        p *= 1.0 / total
        y -= xp.log(total)
        self.save_for_backward(p)
        return y

    def array_backward(self, g):
        (p,) = self.saved
        dx = p * -sum_axis(self.device, g, self.axis)
        dx += g  # g_i - p_i sum_j g_j
        return dx


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed without forming softmax (no log(0))."""
    check_floating("log_softmax", x=x)
    return LogSoftmax(check_axis("log_softmax", x, axis))(x)


def log_softmax_composite(x: Tensor, axis: int = -1) -> Tensor:
    """The same from primitive ops: x - m - log(sum(exp(x - m))), m the detached row max."""
    shifted = x - x.max(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()
