"""layer_norm(x, normalized_shape, weight, bias, eps): normalise each row of the last
dims to mean 0 and variance 1, then scale and shift, as one fused node.

With D the normalised size, per row: mu = mean(x), var = mean((x - mu)^2) (biased, as
PyTorch), rstd = 1 / sqrt(var + eps), xhat = (x - mu) rstd, y = xhat w + b.
Backward, with gx = g w (or g without weight):

    dx = rstd (gx - mean(gx) - xhat mean(gx xhat))
    dw = sum over rows of g xhat,   db = sum over rows of g

Only x (already alive as the input), mu and rstd (one number per row) are saved; xhat
is recomputed in the backward rather than kept, as PyTorch does. Large inputs go through
in blocks of rows of about BLOCK_BYTES on devices that work in blocks (the CPU; not a
GPU), so each of the dozen passes of the formulas reads cache, not memory; on a device
with several workers (`Device.parallel_map`) the blocks are split among them; dw and db
then add the blocks' sums in row order (the same numbers for any number of workers).
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating, check_normalized_shape
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import dot_axis, sum_last, sum_rows
from minigrad.tensor import Tensor

# Elements (N D) from which the rows are split among the device's workers (a T-config
# LayerNorm, 2^16.6 elements, runs faster whole; an S-config one is 2^22.6).
PARALLEL_WORK = 1 << 20
# Bytes of rows per block, on devices that work in blocks (`Device.block_bytes` set). On 2
# cores, forward + backward of (16384, 384) float32, medians of 8: unblocked 28.0 ms,
# blocks of 256 KB 36.2 (more Python between the NumPy calls, and the two workers wait
# on each other for the GIL), 1 MB 20.7, 4 MB 21.6.
BLOCK_BYTES = 1 << 20


class LayerNorm(FusedFunction):
    name = "layer_norm"

    def __init__(self, normalized_shape: tuple, eps: float, has_weight: bool,
                 has_bias: bool):
        self.normalized_shape, self.eps = normalized_shape, eps
        self.size = math.prod(normalized_shape)
        self.inv_size = 1.0 / self.size if self.size else 0.0  # no elements: empty rows
        self.has_weight, self.has_bias = has_weight, has_bias

    def row_parts(self, n_rows: int, itemsize: int) -> list[list[slice]]:
        """For each of the device's workers (`Device.parallel_map`), its rows as blocks of
        about BLOCK_BYTES, so that a block's temporaries stay in cache: one part of one
        block for little work, or on a device without blocks (a GPU)."""
        row_bytes = max(1, self.size * itemsize)
        step = max(1, n_rows)
        if self.device.block_bytes and n_rows * row_bytes > 2 * BLOCK_BYTES:
            step = max(1, BLOCK_BYTES // row_bytes)
        # The blocks depend on the rows alone, not on the workers: so do the sums.
        blocks = [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]
        blocks = blocks or [slice(0, 0)]
        n = min(self.device.workers, len(blocks))
        if n < 2 or n_rows * self.size < PARALLEL_WORK:
            return [blocks]
        bounds = [len(blocks) * i // n for i in range(n + 1)]
        return [blocks[lo:hi] for lo, hi in zip(bounds, bounds[1:])]

    def array_forward(self, x, *params):
        xp, device = self.xp, self.device
        rows = math.prod(x.shape[:x.ndim - len(self.normalized_shape)])
        x2 = xp.reshape(x, (rows, self.size))  # (N, D)
        inv_size = self.inv_size
        parts = self.row_parts(rows, xp.finfo(x.dtype).bits // 8)
        whole = len(parts) == 1 and len(parts[0]) == 1
        out = None if whole else device.empty((rows, self.size), x.dtype)

        def normalize(block):  # rows `block` of x2
            xr = x2[block, :]
            mean = sum_last(device, xr) * inv_size  # (n, 1)
            y = xr - mean  # (n, D): x - mu, then xhat, then the output
            rstd = 1.0 / xp.sqrt(dot_axis(xp, y, y, 1) * inv_size + self.eps)  # (n, 1)
            y *= rstd
            if self.has_weight:
                y *= xp.reshape(params[0], (self.size,))
            if self.has_bias:
                y += xp.reshape(params[-1], (self.size,))
            if out is None:
                return y, mean, rstd
            out[block, :] = y
            return None, mean, rstd

        results = [r for part in device.parallel_map(lambda part: list(map(normalize, part)),
                                                     parts) for r in part]
        y, mean, rstd = results[0] if whole else (
            out, *(xp.concat([r[i] for r in results], axis=0) for i in (1, 2)))
        self.save_for_backward(x2, mean, rstd, params[0] if self.has_weight else None)
        return xp.reshape(y, x.shape)

    def array_backward(self, g):
        xp, device, need = self.xp, self.device, self.needs_input_grad
        x2, mean, rstd, weight = self.saved
        g2 = xp.reshape(g, x2.shape)  # (N, D)
        parts = self.row_parts(x2.shape[0], xp.finfo(x2.dtype).bits // 8)
        whole = len(parts) == 1 and len(parts[0]) == 1
        dx_all = None if whole or not need[0] else device.empty(x2.shape, x2.dtype)

        def row_grads(block):  # rows `block`: (dx or None, dw and db over these rows)
            g2r = g2[block, :]
            xhat = x2[block, :] - mean[block, :]
            xhat *= rstd[block, :]
            w = xp.reshape(weight, (self.size,)) if self.has_weight else None
            dw = sum_rows(device, g2r * xhat) if w is not None and need[1] else None
            db = sum_rows(device, g2r) if self.has_bias and need[-1] else None
            dx = None
            if need[0]:
                inv_size = self.inv_size
                gx = g2r * w if w is not None else g2r
                xhat *= dot_axis(xp, gx, xhat, 1) * inv_size  # xhat mean(gx xhat)
                mean_gx = sum_last(device, gx) * inv_size
                if w is None:
                    dx = gx - mean_gx  # a new array (gx is g itself)
                else:
                    dx = gx  # a new array already: in place
                    dx -= mean_gx
                dx -= xhat
                dx *= rstd[block, :]
                if dx_all is not None:
                    dx_all[block, :] = dx
            return dx, dw, db

        results = [r for part in device.parallel_map(lambda part: list(map(row_grads, part)),
                                                     parts) for r in part]
        dx, dw, db = results[0]
        for _, dw_block, db_block in results[1:]:  # the blocks' sums, in row order
            dw = None if dw is None else dw + dw_block
            db = None if db is None else db + db_block
        grads = [None] * len(need)
        if dw is not None:
            grads[1] = xp.reshape(dw, self.normalized_shape)
        if db is not None:
            grads[-1] = xp.reshape(db, self.normalized_shape)
        if need[0]:
            grads[0] = xp.reshape(dx if dx_all is None else dx_all, g.shape)
        return tuple(grads)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing `normalized_shape` dims of x (an int or a
    tuple), with optional elementwise weight and bias of that shape."""
    check_floating("layer_norm", x=x, weight=weight, bias=bias)
    shape = check_normalized_shape("layer_norm", x, normalized_shape, weight=weight,
                                   bias=bias)
    fn = LayerNorm(shape, float(eps), weight is not None, bias is not None)
    return fn(x, *(p for p in (weight, bias) if p is not None))


def layer_norm_composite(x: Tensor, normalized_shape, weight: Tensor | None = None,
                         bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """The same from primitive ops: mean, var, sqrt and broadcasting."""
    shape = check_normalized_shape("layer_norm_composite", x, normalized_shape,
                                   weight=weight, bias=bias)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    y = centered / (x.var(dim=axes, keepdim=True, correction=0) + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
