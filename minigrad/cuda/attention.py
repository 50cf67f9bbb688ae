"""FlashAttention-style attention (attention.cu) on (B, H, T, D) arrays.

`forward` returns the output and the row log-sum-exp (B, H, Tq) the backward needs; the
(Tq, Tk) attention matrix is never stored. Masks other than causal and attention dropout
are not handled here: the caller keeps its array-API path for those. One variant is
compiled per head size, with tiles chosen to fit 48 KiB of static shared memory.
"""

from __future__ import annotations

from minigrad.cuda.launch import Kernel, c_int, c_scalar, ceil_div, compute_dtype, prepare

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

    def supports(self, q, k, v) -> bool:
        """Whether the kernel handles these shapes (same batch/heads/head size for q, k, v)."""
        if q.ndim != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2]:
            return False
        if q.shape[3] != k.shape[3] or k.shape[2] == 0:
            return False
        return tiles(q.shape[3], 8 if compute_dtype(q) == "float64" else 4) is not None

    def _layout(self, q, k, scale):
        """What both passes start from: namespace, compute dtype, shapes, scale, tiles."""
        dtype = compute_dtype(q)
        d = q.shape[3]
        scale = d ** -0.5 if scale is None else scale
        return self.library.xp, dtype, q.shape, k.shape[2], scale, self._defines(d, dtype)

    def forward(self, q, k, v, causal: bool = False, scale: float | None = None):
        """q (B, H, Tq, D), k, v (B, H, Tk, D) -> out (B, H, Tq, D), lse (B, H, Tq)."""
        xp, dtype, (b, h, tq, d), tk, scale, defines = self._layout(q, k, scale)
        qc, kc, vc = (prepare(xp, a, dtype) for a in (q, k, v))
        out = xp.empty((b, h, tq, d), dtype=dtype)
        lse = xp.empty((b, h, tq), dtype=dtype)
        if b * h and tq:
            self.function("attention_forward", dtype, **defines)(
                (b * h, ceil_div(tq, defines["FWD_BM"])), (defines["FWD_BM"],),
                (qc, kc, vc, out, lse, c_int(tq), c_int(tk), c_scalar(scale, dtype),
                 c_int(causal)))
        return out.astype(q.dtype, copy=False), lse

    def backward(self, q, k, v, out, lse, dout, causal: bool = False,
                 scale: float | None = None):
        """-> dq, dk, dv for the gradient `dout` of the output."""
        xp, dtype, (b, h, tq, d), tk, scale, defines = self._layout(q, k, scale)
        qc, kc, vc, outc, doc = (prepare(xp, a, dtype) for a in (q, k, v, out, dout))
        lse = prepare(xp, lse, dtype)
        delta = xp.ascontiguousarray(xp.sum(doc * outc, axis=-1))  # (B, H, Tq)
        dq = xp.empty((b, h, tq, d), dtype=dtype)
        dk = xp.empty((b, h, tk, d), dtype=dtype)
        dv = xp.empty((b, h, tk, d), dtype=dtype)
        block = defines["BWD_B"]
        if b * h and tk:
            self.function("attention_backward_dkdv", dtype, **defines)(
                (b * h, ceil_div(tk, block)), (block,),
                (qc, kc, vc, doc, lse, delta, dk, dv, c_int(tq), c_int(tk),
                 c_scalar(scale, dtype), c_int(causal)))
        if b * h and tq:
            self.function("attention_backward_dq", dtype, **defines)(
                (b * h, ceil_div(tq, block)), (block,),
                (qc, kc, vc, doc, lse, delta, dq, c_int(tq), c_int(tk),
                 c_scalar(scale, dtype), c_int(causal)))
        return tuple(a.astype(q.dtype, copy=False) for a in (dq, dk, dv))

    def _defines(self, head_dim: int, dtype: str) -> dict:
        defines = tiles(head_dim, 8 if dtype == "float64" else 4)
        if defines is None:
            raise ValueError(f"attention kernel: head size {head_dim} does not fit in shared "
                             "memory; check supports() first")
        return defines
