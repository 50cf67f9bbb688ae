"""F.cross_entropy on the GPU (cross_entropy.cu): rows of logits (N, C), int targets.

The forward kernel gives the per-row losses (0 where the target is ignore_index) and the
row log-sum-exp, the only thing the backward needs besides the logits (already alive),
instead of the (N, C) probabilities. The reduction over rows (mean over the counted
rows, sum) is done here with array ops.
"""

from __future__ import annotations

import math

from minigrad.backends.cuda.compile import (
    Kernel,
    c_int,
    c_long,
    c_scalar,
    compute_dtype,
    prepare,
    row_threads,
)


class CrossEntropyKernel(Kernel):
    source = "cross_entropy.cu"
    kernels = ("cross_entropy_forward", "cross_entropy_backward")  # the functions it launches

    def supports(self, fn, logits, targets) -> bool:
        return True

    def forward(self, fn, logits, targets):
        xp = self.xp
        dtype = compute_dtype(logits)
        n_classes = logits.shape[-1]
        rows = math.prod(targets.shape)
        x = prepare(xp, xp.reshape(logits, (rows, n_classes)), dtype)  # (N, C)
        t = prepare(xp, xp.reshape(targets, (rows,)), "int64")  # (N,)
        losses = xp.empty((rows,), dtype=dtype)
        lse = xp.empty((rows,), dtype=dtype)
        if rows:
            self.function("cross_entropy_forward", dtype)(
                (rows,), (row_threads(n_classes),),
                (x, t, losses, lse, c_int(n_classes), c_long(fn.ignore_index),
                 c_scalar(fn.label_smoothing, dtype)))
        losses = losses.astype(logits.dtype, copy=False)
        fn.in_shape = logits.shape
        if fn.reduction == "none":
            fn.save_for_backward(x, t, lse, None)
            return xp.reshape(losses, targets.shape)
        total = xp.sum(losses)
        row_weight = None  # d total / d loss_i: 1 for "sum"
        if fn.reduction == "mean":
            count = xp.sum(xp.astype(t != fn.ignore_index, losses.dtype))
            total = total / count  # nan when every target is ignored, as in PyTorch
            row_weight = 1.0 / xp.maximum(count, xp.ones_like(count))
        fn.save_for_backward(x, t, lse, row_weight)
        return total

    def backward(self, fn, g):
        xp = self.xp
        x, t, lse, row_weight = fn.saved
        rows, n_classes = x.shape
        dtype = compute_dtype(x)
        if fn.reduction == "none":
            grad_losses = xp.reshape(g, (rows,))
        else:
            w = g if row_weight is None else g * row_weight
            grad_losses = xp.broadcast_to(xp.reshape(w, (1,)), (rows,))
        dx = xp.empty((rows, n_classes), dtype=dtype)
        if rows:
            self.function("cross_entropy_backward", dtype)(
                (rows,), (row_threads(n_classes),),
                (x, t, lse, prepare(xp, grad_losses, dtype), dx, c_int(n_classes),
                 c_long(fn.ignore_index), c_scalar(fn.label_smoothing, dtype)))
        return xp.reshape(dx.astype(g.dtype, copy=False), fn.in_shape), None
