"""F.scaled_dot_product_attention on the GPU: FlashAttention-style (attention.cu).

The leading dims are folded into one batch of heads (1, B*H, T, D). The forward saves
q, k, v, the output and the row log-sum-exp (B, H, Tq) the backward needs; the (Tq, Tk)
attention matrix is never stored. Masks other than causal, attention dropout, Dv != D
and head sizes past the tiles are not supported: the op runs its array-API code for
those. One variant is compiled per head size, with tiles chosen to fit 48 KiB of static
shared memory.
"""

from __future__ import annotations

import math

from minigrad.backends.cuda.compile import Kernel, c_int, c_scalar, ceil_div, compute_dtype, prepare

SHARED_BYTES = 48 * 1024
FORWARD_TILES = ((64, 32), (32, 32), (32, 16), (16, 16), (16, 8), (8, 8))  # (queries, keys)
BACKWARD_TILES = (32, 16, 8)


def tiles(head_dim: int, itemsize: int) -> dict | None:
    """The tile defines for a head size, or None if no tile fits in shared memory.

    Shared words per block (see attention.cu): forward bm (D + 1) + 2 bn D; backward
    dk/dv b (4 D + 4), dq b (4 D + 2)."""
    words = SHARED_BYTES // itemsize
    forward = next(((bm, bn) for bm, bn in FORWARD_TILES
                    if bm * (head_dim + 1) + 2 * bn * head_dim <= words), None)
    backward = next((b for b in BACKWARD_TILES if b * (4 * head_dim + 4) <= words), None)
    if forward is None or backward is None:
        return None
    return {"HEAD_DIM": head_dim, "FWD_BM": forward[0], "FWD_BN": forward[1],
            "BWD_B": backward}


class AttentionKernel(Kernel):
    source = "attention.cu"
    kernels = ("attention_forward", "attention_backward_dkdv",
               "attention_backward_dq")  # the functions it launches

    def supports(self, fn, q, k, v, *mask) -> bool:
        """No mask, no dropout, v shaped like k, and a head size that fits the tiles."""
        if mask or fn.dropout_p or v.shape != k.shape or k.shape[-2] == 0:
            return False
        return tiles(q.shape[-1], 8 if compute_dtype(q) == "float64" else 4) is not None

    def forward(self, fn, q, k, v):
        """q (..., Tq, D), k, v (..., Tk, D) -> out (..., Tq, D)."""
        xp = self.xp
        dtype = compute_dtype(q)
        heads, tq, tk, d = math.prod(q.shape[:-2]), q.shape[-2], k.shape[-2], q.shape[-1]
        q4, k4, v4 = (prepare(xp, xp.reshape(a, (1, heads) + a.shape[-2:]), dtype)
                      for a in (q, k, v))
        defines = self._defines(d, dtype)
        out = xp.empty((1, heads, tq, d), dtype=dtype)
        lse = xp.empty((1, heads, tq), dtype=dtype)
        if heads and tq:
            self.function("attention_forward", dtype, **defines)(
                (heads, ceil_div(tq, defines["FWD_BM"])), (defines["FWD_BM"],),
                (q4, k4, v4, out, lse, c_int(tq), c_int(tk), c_scalar(fn.scale, dtype),
                 c_int(fn.causal)))
        fn.shapes = (q.shape, k.shape)
        fn.save_for_backward(q4, k4, v4, out, lse)
        return xp.reshape(out.astype(q.dtype, copy=False), q.shape)

    def backward(self, fn, g):
        """-> dq, dk, dv for the gradient `g` of the output."""
        xp = self.xp
        q4, k4, v4, out, lse = fn.saved
        q_shape, k_shape = fn.shapes
        dtype = compute_dtype(q4)
        _, heads, tq, d = q4.shape
        tk = k4.shape[2]
        defines = self._defines(d, dtype)
        dout = prepare(xp, xp.reshape(g, out.shape), dtype)
        delta = xp.ascontiguousarray(xp.sum(dout * out, axis=-1))  # (1, B*H, Tq)
        dq = xp.empty(q4.shape, dtype=dtype)
        dk = xp.empty(k4.shape, dtype=dtype)
        dv = xp.empty(k4.shape, dtype=dtype)
        block = defines["BWD_B"]
        args = (c_int(tq), c_int(tk), c_scalar(fn.scale, dtype), c_int(fn.causal))
        if heads and tk:
            self.function("attention_backward_dkdv", dtype, **defines)(
                (heads, ceil_div(tk, block)), (block,),
                (q4, k4, v4, dout, lse, delta, dk, dv, *args))
        if heads and tq:
            self.function("attention_backward_dq", dtype, **defines)(
                (heads, ceil_div(tq, block)), (block,),
                (q4, k4, v4, dout, lse, delta, dq, *args))
        return tuple(xp.reshape(a.astype(g.dtype, copy=False), shape)
                     for a, shape in ((dq, q_shape), (dk, k_shape), (dv, k_shape)))

    def _defines(self, head_dim: int, dtype: str) -> dict:
        defines = tiles(head_dim, 8 if dtype == "float64" else 4)
        if defines is None:
            raise ValueError(f"attention kernel: head size {head_dim} does not fit in shared "
                             "memory; check supports() first")
        return defines
