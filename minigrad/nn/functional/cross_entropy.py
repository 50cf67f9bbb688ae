"""cross_entropy(logits, targets): the mean (or sum) of -log softmax(logits)[target],
as one fused node that never builds a one-hot matrix.

Shapes as in PyTorch: logits (N, C), (C,) or (N, C, d1, ...) (the class dim is 1),
targets of class indices (N), () or (N, d1, ...); class weights and probability
targets are supported too (see `cross_entropy`). The fused node works on rows:
logits (R, C), targets (R,). With lse = logsumexp(x) over
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
from minigrad.nn.functional.log_softmax import log_softmax, log_softmax_composite
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


def cross_entropy(logits: Tensor, targets: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy as torch.nn.functional.cross_entropy: logits (N, C), (C,) or
    (N, C, d1, ...) with the class dim 1; targets class indices (N), () or (N, d1, ...),
    or class probabilities shaped like logits. `weight` (C,) weighs each class (the
    "mean" then divides by the targets' total weight, as PyTorch does).

    Integer targets without weights run the fused node above (on (rows, C) logits);
    weights and probability targets combine the fused log_softmax with primitive ops
    (`_general_loss`)."""
    rows, targets, restore = _rows("cross_entropy", logits, targets, weight, reduction,
                                   label_smoothing)
    if weight is None and not _is_probabilities(targets):
        out = CrossEntropy(ignore_index, reduction, float(label_smoothing))(rows, targets)
    else:
        out = _general_loss(log_softmax(rows, axis=-1), targets, weight, ignore_index,
                            reduction, float(label_smoothing))
    return restore(out)


def cross_entropy_composite(logits: Tensor, targets: Tensor, weight: Tensor | None = None,
                            ignore_index: int = -100, reduction: str = "mean",
                            label_smoothing: float = 0.0) -> Tensor:
    """The same loss from primitive ops: the composite log_softmax, a gather, where."""
    rows, targets, restore = _rows("cross_entropy_composite", logits, targets, weight,
                                   reduction, label_smoothing)
    return restore(_general_loss(log_softmax_composite(rows, axis=-1), targets, weight,
                                 ignore_index, reduction, float(label_smoothing)))


def _general_loss(logp: Tensor, targets: Tensor, weight, ignore_index: int, reduction: str,
                  eps: float) -> Tensor:
    """PyTorch's loss from log-probabilities logp (R, C) and targets (R,) of classes or
    (R, C) of probabilities, with optional class weights and label smoothing eps:

        classes:        (1 - eps) w_t (-logp_t) + eps / C sum_c w_c (-logp_c), 0 if ignored;
                        "mean" divides by sum of w_t over counted rows (their count
                        without weights)
        probabilities:  -sum_c w_c y_c logp_c with y smoothed to (1 - eps) y + eps / C;
                        "mean" divides by R
    """
    from minigrad.creation import arange

    n_classes = logp.shape[-1]
    wlogp = logp if weight is None else logp * weight  # (R, C)
    if _is_probabilities(targets):
        y = targets if not eps else targets * (1.0 - eps) + eps / n_classes
        loss = -(wlogp * y).sum(dim=-1)  # (R,)
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.mean()
    counted = targets != ignore_index  # (R,)
    t = where(counted, targets, 0)
    loss = -wlogp[arange(t.shape[0], device=t.device), t]  # -w_t log p_t
    if eps:
        loss = (1.0 - eps) * loss - (eps / n_classes) * wlogp.sum(dim=-1)
    loss = where(counted, loss, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    counts = counted.astype(logp.dtype)
    total = counts.sum() if weight is None else (weight[t] * counts).sum()
    return loss.sum() / total


def _is_probabilities(targets: Tensor) -> bool:
    return targets.is_floating_point()


def _rows(op, logits, targets, weight, reduction, label_smoothing):
    """(logits as (R, C) rows, targets as (R,) or (R, C), a function giving the loss back
    its (N, d1, ...) shape for reduction="none"), after checking the arguments."""
    check_floating(op, logits=logits, weight=weight)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if targets.device is not logits.device:
        raise ValueError(f"{op}: logits on {logits.device}, targets on {targets.device}")
    soft = targets.is_floating_point()
    if soft:
        check_floating(op, logits=logits, targets=targets)
    else:
        check_integer(op, "targets", targets)
    if logits.ndim == 0:
        raise ValueError(f"{op}: logits must have a class dim, got a 0-d tensor")
    n_classes = logits.shape[0 if logits.ndim == 1 else 1]
    lead = () if logits.ndim == 1 else (logits.shape[0],) + logits.shape[2:]  # (N, d1, ...)
    want = logits.shape if soft else lead
    if targets.shape != want:
        kind = "probabilities shaped like logits" if soft else "class indices"
        raise ValueError(f"{op}: logits {logits.shape} and targets {targets.shape}: expected "
                         f"logits (N, C) or (N, C, d1, ...) (class dim 1) and targets of "
                         f"{kind} {want}")
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"{op}: weight has shape {weight.shape}, expected ({n_classes},), one "
                         "per class")
    if logits.ndim == 2:  # already one row per example: no reshape nodes in the graph
        return logits, targets, lambda loss: loss
    if logits.ndim > 2:  # the class dim last, then one row per position
        logits = logits.permute((0, *range(2, logits.ndim), 1))
        if soft:
            targets = targets.permute((0, *range(2, targets.ndim), 1))
    rows = logits.reshape(-1, n_classes)
    targets = targets.reshape(-1, n_classes) if soft else targets.reshape(-1)

    def restore(loss):
        return loss.reshape(lead) if reduction == "none" else loss

    return rows, targets, restore
