"""Gradients across ranks: the data-parallel average in one flat buffer, and the global
norm for clipping when parameters are spread over ranks.

Data parallel: each replica's backward leaves the gradient of its own batch's mean
loss; the gradient of the global batch's mean is their average. All of a device's
gradients of one dtype are packed into one flat buffer, so a step makes one all-reduce
(latency paid once, not once per parameter), and it runs after the last micro-batch of
gradient accumulation only.

Global norm: every element of every gradient counts once, though it may sit on several
ranks (replicated across tensor-parallel shards, an embedding tied between the first
and last pipeline stage, the replicas of data parallelism). Each rank weights a
parameter's sum of squares by 1 / (the number of ranks holding the same values), and
one all-reduce over all ranks adds them up.
"""

from __future__ import annotations

import minigrad
from minigrad import Tensor


def flat_gradients(params, xp):
    """One buffer holding every parameter's gradient (zeros where it has none)."""
    for p in params:
        if p.grad is None:  # unused by this batch: it still takes part in the sum
            p.grad = minigrad.zeros_like(p)
    return xp.concat([xp.reshape(p.grad.data, (-1,)) for p in params])


def set_flat_gradients(params, flat, xp) -> None:
    """Make each parameter's gradient its view of `flat`."""
    offset = 0
    for p in params:
        p.grad = Tensor(xp.reshape(flat[offset:offset + p.numel()], p.shape))
        offset += p.numel()


def by_kind(params) -> dict:
    """Parameters grouped by (device, dtype): each group packs into one buffer."""
    groups: dict = {}
    for p in params:
        groups.setdefault((p.device.name, str(p.dtype)), []).append(p)
    return groups


def average_gradients(params, comm) -> None:
    """Replace each gradient by its mean over the ranks of `comm` (one all-reduce per
    device and dtype)."""
    if comm.size == 1:
        return
    for group in by_kind(params).values():
        xp = group[0].device.xp
        flat = comm.all_reduce(flat_gradients(group, xp)) * (1.0 / comm.size)
        set_flat_gradients(group, flat, xp)


def global_grad_norm(weighted, comm):
    """sqrt(sum over ranks of sum_p weight_p grad_p^2), a 0-d array on the device of the
    gradients, for `weighted` = [(tensor with .grad, weight: a number, or one per element)]."""
    first = next(t for t, _ in weighted)
    xp = first.device.xp
    squares = [xp.sum(xp.astype(t.grad.data, xp.float64) ** 2 * w)
               for t, w in weighted if t.grad is not None]
    local = xp.sum(xp.stack(squares)) if squares else xp.zeros((), dtype=xp.float64)
    return xp.sqrt(comm.all_reduce(xp.reshape(local, (1,))))[0]


def clip_gradients_(tensors, norm, max_norm: float) -> None:
    """Scale the gradients by min(1, max_norm / (norm + 1e-6)), the factor of
    `minigrad.nn.utils.clip_grad_norm_`, applied to a norm taken across ranks."""
    if max_norm == float("inf"):
        return
    for t in tensors:
        if t.grad is not None:
            xp = t.device.xp
            scale = xp.clip(max_norm / (norm + 1e-6), max=1.0)
            t.grad = Tensor(t.grad.data * xp.astype(scale, t.grad.dtype))
