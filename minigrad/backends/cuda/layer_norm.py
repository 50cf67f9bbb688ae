"""F.layer_norm on the GPU (layer_norm.cu): rows (N, D) of the normalised size, optional
weight and bias (D,).

The forward saves x, the per-row mean and 1/std; the backward returns dx and, when
asked, the weight and bias gradients (column sums over rows, reduced per chunk of rows
on the device and then over the chunks).
"""

from __future__ import annotations

from minigrad.backends.cuda.compile import (
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

    def supports(self, fn, x, *params) -> bool:
        return True

    def forward(self, fn, x, *params):
        xp = self.xp
        dtype = compute_dtype(x)
        x2 = prepare(xp, xp.reshape(x, (-1, fn.size)), dtype)  # (N, D)
        n, d = x2.shape
        weight = prepare(xp, xp.reshape(params[0], (d,)), dtype) if fn.has_weight else None
        bias = prepare(xp, xp.reshape(params[-1], (d,)), dtype) if fn.has_bias else None
        y = xp.empty((n, d), dtype=dtype)
        mean = xp.empty((n,), dtype=dtype)
        rstd = xp.empty((n,), dtype=dtype)
        if n:
            self.function("layer_norm_forward", dtype)(
                (n,), (row_threads(d),),
                (x2, x2 if weight is None else weight, x2 if bias is None else bias,  # unread
                 y, mean, rstd, c_int(d), c_scalar(fn.eps, dtype), c_int(weight is not None),
                 c_int(bias is not None)))
        fn.save_for_backward(x2, mean, rstd, weight)
        return xp.reshape(y.astype(x.dtype, copy=False), x.shape)

    def backward(self, fn, g):
        xp, need = self.xp, fn.needs_input_grad
        x2, mean, rstd, weight = fn.saved
        n, d = x2.shape
        dtype = compute_dtype(x2)
        dy = prepare(xp, xp.reshape(g, (n, d)), dtype)
        grads = [None] * len(need)
        if need[0]:
            dx = xp.empty((n, d), dtype=dtype)
            if n:
                self.function("layer_norm_backward_input", dtype)(
                    (n,), (row_threads(d),),
                    (dy, x2, x2 if weight is None else weight, mean, rstd, dx, c_int(d),
                     c_int(weight is not None)))
            grads[0] = xp.reshape(dx.astype(g.dtype, copy=False), g.shape)
        want_weight = fn.has_weight and need[1]
        want_bias = fn.has_bias and need[-1]
        if want_weight or want_bias:
            chunks = max(1, ceil_div(n, ROWS_PER_CHUNK))
            partial_w = xp.zeros((chunks, d), dtype=dtype)
            partial_b = xp.zeros((chunks, d), dtype=dtype)
            if n:
                self.function("layer_norm_backward_params", dtype)(
                    (ceil_div(d, PARAM_THREADS), chunks), (PARAM_THREADS,),
                    (dy, x2, mean, rstd, partial_w, partial_b, c_long(n), c_int(d),
                     c_int(ROWS_PER_CHUNK)))
            if want_weight:
                grads[1] = xp.reshape(xp.sum(partial_w, axis=0).astype(g.dtype, copy=False),
                                      fn.normalized_shape)
            if want_bias:
                grads[-1] = xp.reshape(xp.sum(partial_b, axis=0).astype(g.dtype, copy=False),
                                       fn.normalized_shape)
        return tuple(grads)
