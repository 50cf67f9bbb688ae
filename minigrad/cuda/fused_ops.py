"""`Device.kernels` entries: the fused ops' Functions driving the raw kernels.

A fused op (`minigrad.nn.functional`, and `minigrad.ops.activations.GELU`) looks up
`device.kernels[fn.name]` and, when present, calls ``entry.forward(fn, *arrays)`` and
``entry.backward(fn, *grads)`` instead of its own array-API code. The entries here read
the op's parameters from `fn`, reshape to the raw kernels' row layout, and keep what
their backward needs in `fn.save_for_backward`. Inputs a kernel does not handle
(attention with a mask or dropout, head sizes past the tiles) are handed back to the
op's array-API path by clearing `fn.kernel`.

The raw kernels may be the CUDA ones (`minigrad.cuda.build_kernels`) or their array-API
twins (`minigrad.cuda.reference.reference_kernels`): the tests run the fused ops through
both on the CPU.
"""

from __future__ import annotations

import math


class CrossEntropyOp:
    """nn.functional.cross_entropy: saves the logits (already alive) and the row
    log-sum-exp instead of the (N, C) probabilities."""

    def __init__(self, raw):
        self.raw = raw

    def forward(self, fn, logits, targets):
        xp = fn.xp
        n_classes = logits.shape[-1]
        rows = math.prod(targets.shape)
        x = xp.reshape(logits, (rows, n_classes))  # (N, C)
        t = xp.reshape(targets, (rows,))  # (N,)
        losses, lse = self.raw.forward(x, t, fn.ignore_index, fn.label_smoothing)
        fn.in_shape = logits.shape
        if fn.reduction == "none":
            fn.save_for_backward(x, t, lse, None)
            return xp.reshape(losses, targets.shape)
        total = xp.sum(losses)
        row_weight = None  # d total / d loss_i: 1 for "sum"
        if fn.reduction == "mean":
            count = xp.sum(xp.astype(t != fn.ignore_index, x.dtype))
            total = total / count  # nan when every target is ignored, as in PyTorch
            row_weight = 1.0 / xp.maximum(count, xp.ones_like(count))
        fn.save_for_backward(x, t, lse, row_weight)
        return total

    def backward(self, fn, g):
        xp = fn.xp
        x, t, lse, row_weight = fn.saved
        rows = x.shape[0]
        if fn.reduction == "none":
            grad_losses = xp.reshape(g, (rows,))
        else:
            w = g if row_weight is None else g * row_weight
            grad_losses = xp.broadcast_to(xp.reshape(w, (1,)), (rows,))
        dx = self.raw.backward(x, t, lse, grad_losses, fn.ignore_index, fn.label_smoothing)
        return xp.reshape(dx, fn.in_shape), None


class LayerNormOp:
    """nn.functional.layer_norm: rows of the normalised size; saves x, mean, rstd."""

    def __init__(self, raw):
        self.raw = raw

    def forward(self, fn, x, *params):
        xp = fn.xp
        x2 = xp.reshape(x, (-1, fn.size))  # (N, D)
        weight = xp.reshape(params[0], (fn.size,)) if fn.has_weight else None
        bias = xp.reshape(params[-1], (fn.size,)) if fn.has_bias else None
        y, mean, rstd = self.raw.forward(x2, weight, bias, fn.eps)
        fn.save_for_backward(x2, mean, rstd, weight)
        return xp.reshape(y, x.shape)

    def backward(self, fn, g):
        xp, need = fn.xp, fn.needs_input_grad
        x2, mean, rstd, weight = fn.saved
        want_weight = fn.has_weight and need[1]
        want_bias = fn.has_bias and need[-1]
        dx, dweight, dbias = self.raw.backward(xp.reshape(g, x2.shape), x2, weight, mean, rstd,
                                               want_weight or want_bias)
        grads = [None] * len(need)
        if need[0]:
            grads[0] = xp.reshape(dx, g.shape)
        if want_weight:
            grads[1] = xp.reshape(dweight, fn.normalized_shape)
        if want_bias:
            grads[-1] = xp.reshape(dbias, fn.normalized_shape)
        return tuple(grads)


class AttentionOp:
    """nn.functional.scaled_dot_product_attention without a mask or dropout (causal or
    not): leading dims folded into one batch of heads; saves q, k, v, out and lse."""

    def __init__(self, raw):
        self.raw = raw

    def forward(self, fn, q, k, v, *mask):
        xp = fn.xp
        if mask or fn.dropout_p or v.shape != k.shape:
            return self._decline(fn, q, k, v, *mask)
        heads = math.prod(q.shape[:-2])
        q4, k4, v4 = (xp.reshape(a, (1, heads) + a.shape[-2:]) for a in (q, k, v))
        if not self.raw.supports(q4, k4, v4):
            return self._decline(fn, q, k, v)
        out, lse = self.raw.forward(q4, k4, v4, fn.causal, fn.scale)
        fn.shapes = (q.shape, k.shape)
        fn.save_for_backward(q4, k4, v4, out, lse)
        return xp.reshape(out, q.shape)

    @staticmethod
    def _decline(fn, *arrays):
        fn.kernel = None  # the backward takes the array-API path too
        return fn.array_forward(*arrays)

    def backward(self, fn, g):
        xp = fn.xp
        q4, k4, v4, out, lse = fn.saved
        q_shape, k_shape = fn.shapes
        dq, dk, dv = self.raw.backward(q4, k4, v4, out, lse, xp.reshape(g, out.shape),
                                       fn.causal, fn.scale)
        return xp.reshape(dq, q_shape), xp.reshape(dk, k_shape), xp.reshape(dv, k_shape)


class GeluOp:
    """ops.gelu: saves x only; the backward recomputes Phi(x) (or the tanh term)."""

    def __init__(self, raw):
        self.raw = raw

    def forward(self, fn, a):
        fn.save_for_backward(a)
        return self.raw.forward(a, fn.approximate)

    def backward(self, fn, g):
        (a,) = fn.saved
        return self.raw.backward(a, g, fn.approximate)


def op_kernels(raw: dict) -> dict:
    """The `Device.kernels` dict for a set of raw kernels (keys are the ops' names)."""
    return {
        "cross_entropy": CrossEntropyOp(raw["cross_entropy"]),
        "layer_norm": LayerNormOp(raw["layer_norm"]),
        "scaled_dot_product_attention": AttentionOp(raw["attention"]),
        "gelu": GeluOp(raw["gelu"]),
        "adamw": raw["adamw"],
    }
