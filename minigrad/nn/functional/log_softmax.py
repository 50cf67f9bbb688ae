"""log_softmax(x, axis): x - logsumexp(x) along one axis, as one fused node.

Forward: with m the row max, log sum_j e^x_j = m + log sum_j e^(x_j - m), where every
exponent is <= 0 (no overflow) and the largest term is 1 (the log never sees 0).
Backward, with p = softmax(x) = e^y:

    dx_i = g_i - p_i sum_j g_j

The forward already has e = e^(x - m) and its row sums s, and p = e / s; it saves e and
1 / s rather than y, so the backward needs no exp. (Usually the consumer of y, such as
a gather of the targets' log-probabilities, keeps nothing, so this costs no memory.)
A row that is all -inf gives nan, as in PyTorch.
"""

from __future__ import annotations

from minigrad.nn.functional._checks import check_axis, check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import sum_axis
from minigrad.nn.functional.softmax import shifted_by_max
from minigrad.ops._util import dim_alias
from minigrad.tensor import Tensor


class LogSoftmax(FusedFunction):
    name = "log_softmax"

    def __init__(self, axis: int):
        self.axis = axis

    def array_forward(self, x):
        xp = self.xp
        if x.shape[self.axis] == 0:  # over no elements: an empty result
            y = xp.zeros_like(x)
            self.save_for_backward(y, sum_axis(self.device, y, self.axis))
            return y
        y = x - xp.max(x, axis=self.axis, keepdims=True)
        e = xp.exp(y)
        total = sum_axis(self.device, e, self.axis)
        y -= xp.log(total)
        self.save_for_backward(e, 1.0 / total)
        return y

    def array_backward(self, g):
        e, inv_total = self.saved
        dx = e * (sum_axis(self.device, g, self.axis) * -inv_total)  # -p_i sum_j g_j
        dx += g
        return dx


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along `axis`, computed without forming softmax (no log(0))."""
    axis = dim_alias("log_softmax", dim, axis, -1)  # PyTorch's dim, or NumPy's axis
    check_floating("log_softmax", x=x)
    return LogSoftmax(check_axis("log_softmax", x, axis))(x)


def log_softmax_composite(x: Tensor, axis: int = -1) -> Tensor:
    """The same from primitive ops: x - m - log(sum(exp(x - m))), m the detached row max."""
    shifted = shifted_by_max(x, axis)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()
