"""scaled_dot_product_attention(q, k, v, ...): softmax(q k^T * scale + mask) v, one node.

Shapes: q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with equal leading dims, usually
(B, H, T, D); the result is (..., Tq, Dv). Forward:

    s = (q * scale) k^T + bias          (..., Tq, Tk)
    p = softmax(s) over the keys;  a = dropout(p);  out = a v

`bias` is the mask as an additive term: a boolean mask (True = attend) becomes 0 / -inf,
a float mask is added as given, and `is_causal=True` adds a cached (Tq, Tk) 0 / -inf
matrix (key j visible to query i when j <= i, top-left aligned as PyTorch's is_causal).
A query that sees no key at all gets zero output and zero gradients, as in PyTorch.

Causal attention runs in row blocks of QUERY_BLOCK queries: the block of queries
[i0, i1) only sees keys [0, i1), so its scores, softmax and products stop there and the
masked upper triangle is never computed except within the diagonal block (about
(n + 1) / 2n of the work for n blocks: 62.5% for T = 256). Each row of a block has all its
visible keys, so the softmax needs no rescaling across blocks. Without `causal` the
queries form one block.

Backward, written out (no autograd through the softmax), per block, with g = dL/dout:

    dv = a^T g
    da = g v^T;  dp = da * keep / (1 - dropout_p)
    ds = p * (dp - rowsum(dp * p))      (the softmax backward)
    dq = ds k * scale;  dk = ds^T q * scale;  dmask = ds (summed to the mask's shape)

rowsum(dp * p) = rowsum(g * out) (FlashAttention's identity: out = a v), Tq Dv products
instead of Tq Tk. dk and dv sum the blocks' contributions to their leading key rows.

On a device with several workers (the CPU backend: one per core) the batch is split
among them (`Device.parallel_map`), each part running the blocks above on its own core.

Saved: q * scale, k, v, out, the blocks' p (..., rows, keys) of each part and the boolean
dropout mask.
"""

from __future__ import annotations

import functools
import math

from minigrad import backends
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

# Queries per row block of causal attention: a block computes scores only against the
# keys its last query sees, so the masked upper triangle is (mostly) never computed.
QUERY_BLOCK = 64
# Multiply-adds of q k^T (B H Tq D Tk) from which the batch is split among the device's
# workers (`Device.parallel_map`: the CPU backend's cores), each part on one BLAS thread
# (a T-config attention, 2^22.6, runs faster whole; an S-config one is 2^30.6).
PARALLEL_WORK = 1 << 26


class ScaledDotProductAttention(FusedFunction):
    name = "scaled_dot_product_attention"

    def __init__(self, scale: float, causal: bool, dropout_p: float,
                 generator: Generator | None):
        self.scale, self.causal = scale, causal
        self.dropout_p, self.generator = dropout_p, generator

    def row_blocks(self, tq: int, tk: int):
        """(rows, key_end, diagonal) per block of queries: the rows see keys [0, key_end),
        and columns [diagonal, key_end) of the block need the causal mask. Without `causal`
        (or without queries) one block of all rows sees all keys."""
        if not self.causal or tq == 0:
            return [(slice(0, tq), tk, tk)]
        blocks = []
        for start in range(0, tq, QUERY_BLOCK):
            stop = min(start + QUERY_BLOCK, tq)
            blocks.append((slice(start, stop), min(stop, tk), min(start, tk)))
        return blocks

    def parts(self, q, tk: int) -> list[tuple]:
        """Index prefixes splitting the first axis (the batch) among the device's workers
        (`Device.parallel_map`): [()] (no split) for one worker or little work."""
        n = min(self.device.workers, q.shape[0]) if q.ndim > 2 else 1
        if n < 2 or math.prod(q.shape) * tk < PARALLEL_WORK:
            return [()]
        bounds = [q.shape[0] * i // n for i in range(n + 1)]
        return [(slice(lo, hi),) for lo, hi in zip(bounds, bounds[1:])]

    def array_forward(self, q, k, v, *mask):
        xp, device = self.xp, self.device
        tq, tk = q.shape[-2], k.shape[-2]
        scores_shape = q.shape[:-1] + (tk,)  # (..., Tq, Tk)
        q_scaled = q * self.scale  # (..., Tq, D): Tq D multiplies instead of Tq Tk
        bias = None
        if mask:
            self.mask_shape = mask[0].shape
            bias = xp.broadcast_to(mask_bias(device, mask[0], q.dtype), scores_shape)
        keep = None
        if self.dropout_p:  # drawn whole, so a seed gives the same mask as the composite
            keep = draw_keep_mask(self.generator, scores_shape, q.dtype, self.dropout_p)
        causal = (causal_bias(device, tq, tk, backends.dtype_name(q.dtype)) if self.causal
                  else None)  # (Tq, Tk) 0 / -inf
        blocks, parts = self.row_blocks(tq, tk), self.parts(q, tk)
        # Several blocks or parts write their rows into one output; one block is the output.
        out = (device.empty(q.shape[:-1] + v.shape[-1:], q.dtype)
               if len(blocks) > 1 or len(parts) > 1 else None)

        def forward_part(part):  # the batch rows `part` (all of them for ())
            at = (*part, ...)
            qp, kp, vp = q_scaled[at], k[at], v[at]
            probs = []
            for rows, key_end, diagonal in blocks:
                keys = slice(0, key_end)
                s = device.matmul(qp[..., rows, :],
                                  xp.matrix_transpose(kp[..., keys, :]))  # (..., rows, keys)
                if bias is not None:
                    s += bias[at][..., rows, keys]
                if causal is not None and diagonal < key_end:  # masked keys: diagonal block
                    s[..., diagonal:key_end] += causal[rows, diagonal:key_end]
                p = softmax_rows(device, s)
                probs.append(p)
                attn = p if keep is None else apply_keep_mask(
                    xp, p, keep[at][..., rows, keys], keep_scale(self.dropout_p))
                rows_out = device.matmul(attn, vp[..., keys, :])  # (..., rows, Dv)
                if out is None:
                    return (p,), rows_out
                out[(*part, ..., rows, slice(None))] = rows_out
            return tuple(probs), None

        results = device.parallel_map(forward_part, parts)
        out = results[0][1] if out is None else out  # (..., Tq, Dv)
        self.save_for_backward(q_scaled, k, v, out, tuple(r[0] for r in results), keep)
        return out

    def array_backward(self, g):
        xp, device, need = self.xp, self.device, self.needs_input_grad
        q_scaled, k, v, out, part_probs, keep = self.saved
        tq, tk = q_scaled.shape[-2], k.shape[-2]
        dropout_scale = keep_scale(self.dropout_p)
        want_scores = need[0] or need[1] or any(need[3:])
        dmask = device.zeros(out.shape[:-1] + (tk,), out.dtype) if any(need[3:]) else None
        parts = self.parts(q_scaled, tk)

        def backward_part(part_and_probs):  # the forward's parts, with their probabilities
            part, probs = part_and_probs
            at = (*part, ...)
            qp, kp, vp, gp = q_scaled[at], k[at], v[at], g[at]
            # rowsum(dp * p) = rowsum(g * out): Tq Dv products instead of Tq Tk
            g_dot_out = dot_axis(xp, gp, out[at], -1) if want_scores else None  # (.., Tq, 1)
            dq_rows, dk, dv = [], None, None
            # The last block sees the most keys: it starts dk and dv, the others add to them.
            blocks = list(zip(self.row_blocks(tq, tk), probs, strict=True))
            for (rows, key_end, _), p in reversed(blocks):
                keys = slice(0, key_end)
                g_rows = gp[..., rows, :]  # (..., rows, Dv)
                block_keep = None if keep is None else keep[at][..., rows, keys]
                if need[2]:
                    attn = p if keep is None else apply_keep_mask(xp, p, block_keep,
                                                                  dropout_scale)
                    dv = add_to_leading_rows(device, dv, device.matmul(
                        xp.matrix_transpose(attn), g_rows), vp.shape)
                if not want_scores:
                    continue
                ds = device.matmul(g_rows, xp.matrix_transpose(vp[..., keys, :]))  # dL/da
                if block_keep is not None:
                    ds = apply_keep_mask(xp, ds, block_keep, dropout_scale)  # dL/dp
                ds -= g_dot_out[..., rows, :]
                ds *= p  # dL/ds = p (dp - rowsum(dp p))
                if need[0]:
                    dq_rows.append(device.matmul(ds, kp[..., keys, :]))  # (..., rows, D)
                if need[1]:
                    dk = add_to_leading_rows(device, dk, device.matmul(
                        xp.matrix_transpose(ds), qp[..., rows, :]), kp.shape)
                if dmask is not None:
                    dmask[(*part, ..., rows, keys)] = ds
            dq = None
            if need[0]:
                dq = dq_rows[0] if len(dq_rows) == 1 else xp.concat(dq_rows[::-1], axis=-2)
                dq *= self.scale  # dk has it already: q_scaled = q * scale
            return dq, dk, dv

        results = device.parallel_map(backward_part, zip(parts, part_probs, strict=True))
        dq, dk, dv = (None if r[0] is None else r[0] if len(r) == 1 else xp.concat(r, axis=0)
                      for r in zip(*results))  # the parts' batch rows, in order
        if len(need) == 3:
            return dq, dk, dv
        return dq, dk, dv, None if dmask is None else sum_to(xp, dmask, self.mask_shape)


def add_to_leading_rows(device, total, part, shape):
    """`total` (shape (..., N, C)) with `part` (..., n, C) added to its first n rows; a None
    total starts from `part` itself when n = N, else from zeros."""
    if total is None:
        if part.shape == shape:
            return part
        total = device.zeros(shape, part.dtype)
    total[..., :part.shape[-2], :] += part
    return total


def softmax_rows(device, s):
    """Softmax over the last axis, in place on the scores `s` (consumed): a row that is
    all -inf (a query that sees no key, also when there are no keys) becomes zeros."""
    xp = device.xp
    if s.shape[-1] == 0:
        return s  # no keys: p @ v gives the zero output
    row_max = xp.max(s, axis=-1, keepdims=True)  # (..., rows, 1)
    s -= xp.where(row_max == -math.inf, 0.0, row_max)  # a fully masked row stays -inf
    p = xp.exp(s)  # 0 where masked
    total = sum_last(device, p)
    p *= 1.0 / xp.where(total > 0, total, 1.0)
    return p


def mask_bias(device, mask, dtype):
    """The mask as an additive term: booleans (True = attend) -> 0 / -inf; floats as is."""
    if mask.dtype == device.dtype("bool"):
        return device.xp.where(mask, 0.0, device.full((), -math.inf, dtype))
    return mask


@functools.lru_cache(maxsize=32)
def causal_mask(device, tq: int, tk: int):
    """(Tq, Tk) boolean: True where key j is visible to query i (j <= i, top-left aligned
    as PyTorch's is_causal). Built with array ops once per (device, Tq, Tk) and cached;
    callers only read it."""
    xp = device.xp
    rows = xp.reshape(device.arange(tq), (tq, 1))
    cols = xp.reshape(device.arange(tk), (1, tk))
    return cols <= rows


@functools.lru_cache(maxsize=32)
def causal_bias(device, tq: int, tk: int, dtype: str):
    """(Tq, Tk): the causal mask as an additive term, 0 where visible, -inf above the
    diagonal (cached like `causal_mask`)."""
    return device.xp.where(causal_mask(device, tq, tk), 0.0,
                           device.full((tq, tk), -math.inf, dtype))


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False, *,
                                 generator: Generator | None = None) -> Tensor:
    """Attention of queries q over keys k and values v, with PyTorch's arguments (see the
    module docstring).

    attn_mask: boolean (True = attend) or additive float, broadcastable to (..., Tq, Tk);
    unlike PyTorch it may be combined with `is_causal`. dropout_p: dropout on the
    attention weights (pass 0 in evaluation), drawn from `generator`. scale: defaults to
    1 / sqrt(D). enable_gqa: k and v may have fewer heads (dim -3) than q, a divisor of
    q's; each key head then serves a group of query heads.
    """
    k, v = _grouped(q, k, v, enable_gqa)
    scale, generator = _check_arguments("scaled_dot_product_attention", q, k, v, attn_mask,
                                        dropout_p, scale, generator)
    fn = ScaledDotProductAttention(scale, is_causal, float(dropout_p), generator)
    return fn(q, k, v) if attn_mask is None else fn(q, k, v, attn_mask)


def scaled_dot_product_attention_composite(q: Tensor, k: Tensor, v: Tensor,
                                           attn_mask: Tensor | None = None,
                                           dropout_p: float = 0.0, is_causal: bool = False,
                                           scale: float | None = None,
                                           enable_gqa: bool = False, *,
                                           generator: Generator | None = None) -> Tensor:
    """The same from primitive ops and the composite softmax and dropout. (A query that
    sees no key gives nan here: the plain softmax of an all -inf row.)"""
    k, v = _grouped(q, k, v, enable_gqa)
    scale, generator = _check_arguments("scaled_dot_product_attention_composite", q, k, v,
                                        attn_mask, dropout_p, scale, generator)
    scores = (q @ k.mT) * scale  # (..., Tq, Tk)
    if attn_mask is not None:
        is_bool = attn_mask.dtype == attn_mask.device.dtype("bool")
        scores = where(attn_mask, scores, -math.inf) if is_bool else scores + attn_mask
    if is_causal:
        scores = where(Tensor(causal_mask(q.device, *scores.shape[-2:])), scores, -math.inf)
    attn = softmax_composite(scores, axis=-1)
    if dropout_p:
        attn = dropout_composite(attn, dropout_p, generator=generator)
    return attn @ v


def _grouped(q, k, v, enable_gqa: bool):
    """k and v with their heads (dim -3) repeated to q's number under enable_gqa."""
    if not enable_gqa or q.ndim < 3 or k.ndim != q.ndim or k.shape[-3] == q.shape[-3]:
        return k, v
    heads, kv_heads = q.shape[-3], k.shape[-3]
    if kv_heads == 0 or heads % kv_heads or v.shape[-3] != kv_heads:
        raise ValueError(f"scaled_dot_product_attention: enable_gqa needs q's {heads} heads "
                         f"to be a multiple of k's and v's ({kv_heads}, {v.shape[-3]})")
    group = heads // kv_heads
    return k.repeat_interleave(group, dim=-3), v.repeat_interleave(group, dim=-3)


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
