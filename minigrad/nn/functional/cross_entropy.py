"""cross_entropy(logits, targets): the mean (or sum) of -log softmax(logits)[target],
as one fused node that never builds a one-hot matrix.

Shapes: logits (..., C), targets (...) of class indices. With lse = logsumexp(x) over
the C classes of one row x and t its target, the loss of the row is

    loss = (1 - eps) (lse - x_t) + eps (lse - mean_c x_c)

where eps = label_smoothing spreads eps of the target probability evenly over all
classes (PyTorch's definition). Rows whose target is `ignore_index` count for nothing:
"mean" divides by the number of the other rows (so it is nan, with zero gradients,
when every target is ignored, as in PyTorch), "sum" adds them, "none" returns each
row's loss (0 where ignored). Backward, with p = softmax(x) and w the row's upstream
gradient times its weight (1 / count for "mean", else 1; 0 if the row is ignored):

    dx_c = w (p_c - eps / C - (1 - eps) [c == t])

Saved: e = exp(x - max) and 1 / sum(e) (so p = e / sum(e) costs no pass of its own in
the forward); the target column is adjusted with one scatter-add (`index_add`).
Stable for any logits: lse is taken after subtracting the row max. Targets outside
[0, C) raise IndexError where the device checks indices (`Device.check_indices`: on
'cpu' and 'strict'; the CuPy backend skips the check rather than sync with the host).
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating, check_integer
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import sum_last
from minigrad.nn.functional.log_softmax import log_softmax_composite
from minigrad.ops.indexing import where
from minigrad.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(FusedFunction):
    name = "cross_entropy"

    def __init__(self, ignore_index: int, reduction: str, label_smoothing: float):
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def array_forward(self, logits, targets):
        xp, device, eps = self.xp, self.device, self.label_smoothing
        n_classes = logits.shape[-1]
        rows = math.prod(targets.shape)
        x = xp.reshape(logits, (rows, n_classes))  # (N, C)
        t = xp.reshape(targets, (rows, 1))  # (N, 1)
        counted = t != self.ignore_index  # (N, 1)
        t = xp.where(counted, t, 0)  # ignored rows point at class 0, weighted 0 below
        device.check_indices(t, n_classes, self.name)

        shift = xp.max(x, axis=1, keepdims=True)  # (N, 1)
        e = xp.exp(x - shift)  # (N, C); softmax p = e / total
        total = sum_last(device, e)  # (N, 1)
        lse = xp.log(total) + shift  # (N, 1) logsumexp
        loss = lse - xp.take_along_axis(x, t, axis=1)  # -log p_t
        if eps:
            loss = (1.0 - eps) * loss + eps * (lse - sum_last(device, x) * (1.0 / n_classes))
        weight = xp.astype(counted, x.dtype)  # (N, 1)
        loss = xp.where(counted, loss, 0.0)  # an ignored row's logits may be inf or nan

        self.in_shape = logits.shape
        if self.reduction == "none":
            self.save_for_backward(e, 1.0 / total, t, weight)
            return xp.reshape(loss, targets.shape)
        total_loss = xp.sum(loss)
        if self.reduction == "mean":
            count = xp.sum(weight)
            total_loss /= count  # 0 / 0 = nan when every target is ignored, as in PyTorch
            weight /= xp.maximum(count, 1.0)  # ... whose gradient is then 0
        self.save_for_backward(e, 1.0 / total, t, weight)
        return total_loss

    def array_backward(self, g):
        xp, device, eps = self.xp, self.device, self.label_smoothing
        e, inv_total, t, weight = self.saved
        rows, n_classes = e.shape
        w = weight * (xp.reshape(g, (rows, 1)) if self.reduction == "none" else g)  # (N, 1)
        dx = e * (w * inv_total)  # w p
        if eps:
            dx -= w * (eps / n_classes)
        # dx[n, t_n] -= (1 - eps) w_n, one scatter-add over the N target positions
        device.index_add(dx, (device.arange(rows), xp.reshape(t, (rows,))),
                         xp.reshape(w * -(1.0 - eps), (rows,)))
        return xp.reshape(dx, self.in_shape), None


def cross_entropy(logits: Tensor, targets: Tensor, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (..., C) against integer class targets (...); see the
    module docstring. Unlike PyTorch the class axis is the last one."""
    _check_arguments("cross_entropy", logits, targets, reduction, label_smoothing)
    return CrossEntropy(ignore_index, reduction, float(label_smoothing))(logits, targets)


def cross_entropy_composite(logits: Tensor, targets: Tensor, ignore_index: int = -100,
                            reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """The same loss from primitive ops: log_softmax, an integer-array gather, where."""
    from minigrad.creation import arange

    _check_arguments("cross_entropy_composite", logits, targets, reduction, label_smoothing)
    n_classes = logits.shape[-1]
    logp = log_softmax_composite(logits, axis=-1).reshape(-1, n_classes)  # (N, C)
    t = targets.reshape(-1)  # (N,)
    counted = t != ignore_index
    picked = logp[arange(t.shape[0], device=t.device), where(counted, t, 0)]  # log p_t
    loss = -picked
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * logp.mean(axis=-1)
    loss = where(counted, loss, 0.0)
    if reduction == "none":
        return loss.reshape(targets.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / counted.astype(logits.dtype).sum()


def _check_arguments(op, logits, targets, reduction, label_smoothing) -> None:
    check_floating(op, logits=logits)
    check_integer(op, "targets", targets)
    if logits.ndim == 0 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"{op}: logits {logits.shape} and targets {targets.shape}: expected "
                         "logits (..., C) and targets (...) with the same leading shape")
    if targets.device is not logits.device:
        raise ValueError(f"{op}: logits on {logits.device}, targets on {targets.device}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
