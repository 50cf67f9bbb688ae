"""Fused layer norm over the last axis (layer_norm.cu): x (N, D), optional weight/bias (D,).

`forward` returns y and the per-row mean and 1/std that the backward reuses; `backward`
returns dx and, when asked, the weight and bias gradients (column sums over rows,
reduced per chunk of rows on the device and then over the chunks).
"""

from __future__ import annotations

from minigrad.cuda.launch import (
    Kernel,
    c_int,
    c_long,
    c_scalar,
    ceil_div,
    compute_dtype,
    prepare,
    row_threads,
)

ROWS_PER_CHUNK = 64  # rows summed by one block of the weight/bias gradient kernel
PARAM_THREADS = 256  # columns per block of that kernel


class LayerNormKernel(Kernel):
    source = "layer_norm.cu"
    kernels = ("layer_norm_forward", "layer_norm_backward_input",
               "layer_norm_backward_params")  # the functions it launches

    def forward(self, x, weight=None, bias=None, eps: float = 1e-5):
        """x (N, D) -> y (N, D), mean (N,), rstd (N,)."""
        xp = self.library.xp
        dtype = compute_dtype(x)
        n, d = x.shape
        xc = prepare(xp, x, dtype)
        w = xc if weight is None else prepare(xp, weight, dtype)  # unread when absent
        b = xc if bias is None else prepare(xp, bias, dtype)
        y = xp.empty((n, d), dtype=dtype)
        mean = xp.empty((n,), dtype=dtype)
        rstd = xp.empty((n,), dtype=dtype)
        if n:
            self.function("layer_norm_forward", dtype)(
                (n,), (row_threads(d),),
                (xc, w, b, y, mean, rstd, c_int(d), c_scalar(eps, dtype),
                 c_int(weight is not None), c_int(bias is not None)))
        return y.astype(x.dtype, copy=False), mean, rstd

    def backward(self, dy, x, weight, mean, rstd, param_grads: bool = True):
        """-> dx, and dweight, dbias (D,) when `param_grads` (else None, None)."""
        xp = self.library.xp
        dtype = compute_dtype(x)
        n, d = x.shape
        xc, dyc = prepare(xp, x, dtype), prepare(xp, dy, dtype)
        mean, rstd = prepare(xp, mean, dtype), prepare(xp, rstd, dtype)
        w = xc if weight is None else prepare(xp, weight, dtype)
        dx = xp.empty((n, d), dtype=dtype)
        if n:
            self.function("layer_norm_backward_input", dtype)(
                (n,), (row_threads(d),),
                (dyc, xc, w, mean, rstd, dx, c_int(d), c_int(weight is not None)))
        dx = dx.astype(x.dtype, copy=False)
        if not param_grads:
            return dx, None, None
        chunks = max(1, ceil_div(n, ROWS_PER_CHUNK))
        partial_w = xp.zeros((chunks, d), dtype=dtype)
        partial_b = xp.zeros((chunks, d), dtype=dtype)
        if n:
            self.function("layer_norm_backward_params", dtype)(
                (ceil_div(d, PARAM_THREADS), chunks), (PARAM_THREADS,),
                (dyc, xc, mean, rstd, partial_w, partial_b, c_long(n), c_int(d),
                 c_int(ROWS_PER_CHUNK)))
        out_dtype = x.dtype if weight is None else weight.dtype
        return (dx, xp.sum(partial_w, axis=0).astype(out_dtype, copy=False),
                xp.sum(partial_b, axis=0).astype(out_dtype, copy=False))
