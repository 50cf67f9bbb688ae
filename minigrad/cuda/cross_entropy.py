"""Fused softmax + cross-entropy (cross_entropy.cu): rows of logits (N, C), int targets.

`forward` returns the per-row losses (0 where the target is ignore_index) and the row
log-sum-exp, the only thing the backward needs besides the logits. Reductions over rows
(mean over the counted rows, sum) are left to the caller.
"""

from __future__ import annotations

from minigrad.cuda.launch import (
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

    def forward(self, logits, targets, ignore_index: int = -100, label_smoothing: float = 0.0):
        """logits (N, C), targets (N,) -> losses (N,), lse (N,), in the logits' dtype."""
        xp = self.library.xp
        dtype = compute_dtype(logits)
        n, c = logits.shape
        x = prepare(xp, logits, dtype)
        t = prepare(xp, targets, "int64")
        losses = xp.empty((n,), dtype=dtype)
        lse = xp.empty((n,), dtype=dtype)
        if n:
            self.function("cross_entropy_forward", dtype)(
                (n,), (row_threads(c),),
                (x, t, losses, lse, c_int(c), c_long(ignore_index),
                 c_scalar(label_smoothing, dtype)))
        return losses.astype(logits.dtype, copy=False), lse.astype(logits.dtype, copy=False)

    def backward(self, logits, targets, lse, grad_losses, ignore_index: int = -100,
                 label_smoothing: float = 0.0):
        """d(sum_i grad_losses_i * loss_i) / d logits, shaped like logits."""
        xp = self.library.xp
        dtype = compute_dtype(logits)
        n, c = logits.shape
        x = prepare(xp, logits, dtype)
        grad = xp.empty((n, c), dtype=dtype)
        if n:
            self.function("cross_entropy_backward", dtype)(
                (n,), (row_threads(c),),
                (x, prepare(xp, targets, "int64"), prepare(xp, lse, dtype),
                 prepare(xp, grad_losses, dtype), grad, c_int(c), c_long(ignore_index),
                 c_scalar(label_smoothing, dtype)))
        return grad.astype(logits.dtype, copy=False)
