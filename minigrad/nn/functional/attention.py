"""scaled_dot_product_attention(q, k, v, ...): softmax(q k^T * scale + mask) v, one node.

Shapes: q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with equal leading dims, usually
(B, H, T, D); the result is (..., Tq, Dv). Forward:

    s = (q * scale) k^T + bias          (..., Tq, Tk)
    p = softmax(s) over the keys;  a = dropout(p);  out = a v

`bias` is the mask as an additive term: a boolean mask (True = attend) becomes 0 / -inf,
a float mask is added as given, and `causal=True` adds a cached (Tq, Tk) 0 / -inf
matrix (key j visible to query i when j <= i, top-left aligned as PyTorch's is_causal).
A query that sees no key at all gets zero output and zero gradients, as in PyTorch.

Backward, written out (no autograd through the softmax), with g = dL/dout:

    dv = a^T g
    da = g v^T;  dp = da * keep / (1 - dropout_p)
    ds = p * (dp - rowsum(dp * p))      (the softmax backward)
    dq = ds k * scale;  dk = ds^T q * scale;  dmask = ds (summed to the mask's shape)

Saved: q, k, v (inputs, alive anyway), p (..., Tq, Tk) and the boolean dropout mask.
"""

from __future__ import annotations

import functools
import math

from minigrad import backend
from minigrad.creation import arange
from minigrad.nn.functional._checks import check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import dot_axis, sum_last
from minigrad.nn.functional.dropout import (
    apply_keep_mask,
    draw_keep_mask,
    dropout_composite,
    keep_scale,
)
from minigrad.nn.functional.softmax import softmax_composite
from minigrad.ops._util import sum_to
from minigrad.ops.indexing import where
from minigrad.random import Generator, default_generator
from minigrad.tensor import Tensor


class ScaledDotProductAttention(FusedFunction):
    def __init__(self, scale: float, causal: bool, dropout_p: float,
                 generator: Generator | None):
        self.scale, self.causal = scale, causal
        self.dropout_p, self.generator = dropout_p, generator

    def array_forward(self, q, k, v, *mask):
        xp, device = self.xp, self.device
        s = device.matmul(q * self.scale, xp.matrix_transpose(k))  # (..., Tq, Tk)
        if mask:
            s += mask_bias(device, mask[0], s.dtype)
        if self.causal:
            s += causal_bias(device, s.shape[-2], s.shape[-1], backend.dtype_name(s.dtype))
        row_max = xp.max(s, axis=-1, keepdims=True)  # (..., Tq, 1)
        s -= xp.where(row_max == -math.inf, 0.0, row_max)  # a fully masked row stays -inf
        p = xp.exp(s)  # (..., Tq, Tk); 0 where masked
        total = sum_last(device, p)
        p *= 1.0 / xp.where(total > 0, total, 1.0)  # softmax; a fully masked row stays 0
        keep = None
        if self.dropout_p:
            keep = draw_keep_mask(self.generator, p.shape, p.dtype, self.dropout_p)
        self.save_for_backward(q, k, v, p, keep)
        if mask:
            self.mask_shape = mask[0].shape
        attn = p if keep is None else apply_keep_mask(xp, p, keep, keep_scale(self.dropout_p))
        return device.matmul(attn, v)  # (..., Tq, Dv)

    def array_backward(self, g):
        xp, device, need = self.xp, self.device, self.needs_input_grad
        q, k, v, p, keep = self.saved
        dropout_scale = keep_scale(self.dropout_p)
        dv = None
        if need[2]:
            attn = p if keep is None else apply_keep_mask(xp, p, keep, dropout_scale)
            dv = device.matmul(xp.matrix_transpose(attn), g)  # (..., Tk, Dv)
        if not (need[0] or need[1] or any(need[3:])):
            return (None, None, dv) + (None,) * len(need[3:])
        ds = device.matmul(g, xp.matrix_transpose(v))  # (..., Tq, Tk), dL/da
        if keep is not None:
            ds = apply_keep_mask(xp, ds, keep, dropout_scale)  # dL/dp
        ds -= dot_axis(xp, ds, p, -1)
        ds *= p  # dL/ds = p (dp - rowsum(dp p))
        dq = dk = None
        if need[0]:
            dq = device.matmul(ds, k)
            dq *= self.scale
        if need[1]:
            dk = device.matmul(xp.matrix_transpose(ds), q)
            dk *= self.scale
        if len(need) == 3:
            return dq, dk, dv
        dmask = sum_to(xp, ds, self.mask_shape) if need[3] else None
        return dq, dk, dv, dmask


def mask_bias(device, mask, dtype):
    """The mask as an additive term: booleans (True = attend) -> 0 / -inf; floats as is."""
    if mask.dtype == device.dtype("bool"):
        return device.xp.where(mask, 0.0, device.full((), -math.inf, dtype))
    return mask


@functools.lru_cache(maxsize=32)
def causal_bias(device, tq: int, tk: int, dtype: str):
    """(Tq, Tk): 0 where key j <= query i, -inf above the diagonal. Built with array ops
    once per (Tq, Tk, device, dtype) and cached; callers only read it."""
    xp = device.xp
    rows = xp.reshape(device.arange(tq), (tq, 1))
    cols = xp.reshape(device.arange(tk), (1, tk))
    return xp.where(cols <= rows, 0.0, device.full((tq, tk), -math.inf, dtype))


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 causal: bool = False, dropout_p: float = 0.0,
                                 scale: float | None = None,
                                 generator: Generator | None = None) -> Tensor:
    """Attention of queries q over keys k and values v (see the module docstring).

    mask: boolean (True = attend) or additive float, broadcastable to (..., Tq, Tk);
    may be combined with `causal`. dropout_p: dropout on the attention weights (pass 0
    in evaluation). scale: defaults to 1 / sqrt(D).
    """
    scale, generator = _check_arguments("scaled_dot_product_attention", q, k, v, mask,
                                        dropout_p, scale, generator)
    fn = ScaledDotProductAttention(scale, causal, float(dropout_p), generator)
    return fn(q, k, v) if mask is None else fn(q, k, v, mask)


def scaled_dot_product_attention_composite(q: Tensor, k: Tensor, v: Tensor,
                                           mask: Tensor | None = None, causal: bool = False,
                                           dropout_p: float = 0.0, scale: float | None = None,
                                           generator: Generator | None = None) -> Tensor:
    """The same from primitive ops and the composite softmax and dropout. (A query that
    sees no key gives nan here: the plain softmax of an all -inf row.)"""
    scale, generator = _check_arguments("scaled_dot_product_attention_composite", q, k, v,
                                        mask, dropout_p, scale, generator)
    scores = (q @ k.mT) * scale  # (..., Tq, Tk)
    if mask is not None:
        is_bool = mask.dtype == mask.device.dtype("bool")
        scores = where(mask, scores, -math.inf) if is_bool else scores + mask
    if causal:
        tq, tk = scores.shape[-2:]
        rows = arange(tq, device=q.device).reshape(tq, 1)
        cols = arange(tk, device=q.device).reshape(1, tk)
        scores = where(cols <= rows, scores, -math.inf)
    attn = softmax_composite(scores, axis=-1)
    if dropout_p:
        attn = dropout_composite(attn, dropout_p, generator=generator)
    return attn @ v


def _check_arguments(op, q, k, v, mask, dropout_p, scale, generator):
    """(scale, generator) after checking shapes, dtypes, devices and options."""
    check_floating(op, q=q, k=k, v=v)
    if (q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim
            or not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]):
        raise ValueError(f"{op}: q {q.shape}, k {k.shape}, v {v.shape}: expected q (..., Tq, D), "
                         "k (..., Tk, D), v (..., Tk, Dv) with equal leading dims")
    if not all(t.device is q.device for t in (k, v) + ((mask,) if mask is not None else ())):
        raise ValueError(f"{op}: q, k, v and mask must be on one device")
    if mask is not None:
        _check_mask(op, q, mask, q.shape[:-1] + (k.shape[-2],))
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if generator is None and dropout_p:
        generator = default_generator(q.device)
    if generator is not None and generator.device is not q.device:
        raise ValueError(f"{op}: generator on {generator.device}, q on {q.device}")
    return (1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)), generator


def _check_mask(op, q, mask, scores_shape) -> None:
    if mask.dtype != q.device.dtype("bool"):
        check_floating(op, q=q, mask=mask)
    fits = mask.ndim <= len(scores_shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(scores_shape)))
    if not fits:
        raise ValueError(f"{op}: mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores {scores_shape}")
