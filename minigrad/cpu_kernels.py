"""CPU kernels for the NumPy device: fused ops run block by block with in-place ufuncs.

NumPy makes one pass over memory per operator and allocates a temporary for each. On
GPT-sized activations (a (2048, 1536) float32 array is 12 MB; three of them overflow
the L3 cache) every pass streams from main memory. These kernels walk their inputs in
flat blocks of `BLOCK_BYTES`, write every intermediate into a block-sized scratch
buffer with ``out=``, so that all the passes over one block run in the L2 cache, and
allocate only their outputs. The math (and, for AdamW, the order of rounding) is that
of the array-API code of each op, which stays the reference (tests/test_cpu_kernels).

Kernels exist only where they measured faster than the array-API code in a GPT training
step: GELU (about 3x) and AdamW (about 1.05x). LayerNorm's rows (2048 x 384 float32)
fit in L3, where its array-API code already runs at NumPy's per-pass cost; a blocked
version measured slower (Python overhead per block), so it has none.

Entries follow `Device.kernels`' convention (see `minigrad.nn.functional._fused`):
``forward(fn, *arrays)`` / ``backward(fn, *grads)`` with the op's Function as `fn`;
"adamw" is a plain callable (see `minigrad.optim.adam`). `NumpyDevice` installs
`cpu_kernels()`; `kernels_disabled(device)` runs the array-API code instead.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from minigrad.backend import _erf_numpy

# Bytes of one block: the block's slices of the inputs, outputs and scratch fit in L2
# (measured on GELU: 32 KB blocks 1.5x slower than 256 KB, 512 KB no faster).
BLOCK_BYTES = 1 << 18

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class _Scratch:
    """Reusable block-sized buffers, one set per dtype (grown on demand, never freed)."""

    def __init__(self):
        self.buffers: dict = {}

    def get(self, count: int, size: int, dtype) -> list[np.ndarray]:
        """`count` flat buffers of at least `size` elements of `dtype`."""
        key = np.dtype(dtype)
        held = self.buffers.get(key)
        if held is None or len(held) < count or held[0].size < size:
            kept = max(count, len(held or ()))
            held = self.buffers[key] = [np.empty(size, key) for _ in range(kept)]
        return held[:count]


_SCRATCH = _Scratch()


def _blocks(total: int, itemsize: int):
    """Slices of range(total) of BLOCK_BYTES each (elements of `itemsize` bytes)."""
    step = BLOCK_BYTES // itemsize
    for start in range(0, total, step):
        yield slice(start, min(start + step, total))


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1)


# -- GELU ------------------------------------------------------------------------------
class GeluKernel:
    """ops.gelu. tanh: y = 0.5 x (1 + t), t = tanh(sqrt(2/pi) x (1 + 0.044715 x^2)), t
    saved; dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    none: y = x Phi(x), Phi saved; dy/dx = Phi(x) + x phi(x)."""

    def forward(self, fn, a):
        x = _flat(a)
        out = np.empty_like(x)
        saved = np.empty_like(x)  # t (tanh) or Phi (exact)
        (u,) = _SCRATCH.get(1, min(x.size, BLOCK_BYTES // x.itemsize), x.dtype)
        for s in _blocks(x.size, x.itemsize):
            xb, ob, sb, ub = x[s], out[s], saved[s], u[:s.stop - s.start]
            if fn.approximate == "tanh":
                np.multiply(xb, xb, out=ub)
                ub *= _GELU_CUBIC * _SQRT_2_OVER_PI
                ub += _SQRT_2_OVER_PI
                ub *= xb
                np.tanh(ub, out=sb)
                np.add(sb, 1, out=ob)
                ob *= xb
                ob *= 0.5
            else:
                np.multiply(xb, _INV_SQRT_2, out=ub)
                sb[...] = _erf_numpy(ub)
                sb += 1
                sb *= 0.5
                np.multiply(xb, sb, out=ob)
        fn.save_for_backward(x, saved)
        return out.reshape(a.shape)

    def backward(self, fn, g):
        x, saved = fn.saved
        gf = _flat(g)
        dx = np.empty_like(x)
        (u,) = _SCRATCH.get(1, min(x.size, BLOCK_BYTES // x.itemsize), x.dtype)
        for s in _blocks(x.size, x.itemsize):
            xb, sb, db, ub = x[s], saved[s], dx[s], u[:s.stop - s.start]
            if fn.approximate == "tanh":
                np.multiply(xb, xb, out=db)
                db *= 3 * _GELU_CUBIC * _SQRT_2_OVER_PI
                db += _SQRT_2_OVER_PI  # du/dx
                np.multiply(sb, sb, out=ub)
                np.subtract(1, ub, out=ub)  # 1 - t^2
                db *= ub
                db *= xb
                db += sb
                db += 1
                db *= 0.5
            else:
                np.multiply(xb, xb, out=ub)
                ub *= -0.5
                np.exp(ub, out=ub)
                np.multiply(xb, _INV_SQRT_2PI, out=db)
                db *= ub  # x phi(x)
                db += sb
            db *= gf[s]
        return dx.reshape(g.shape)


# -- AdamW -----------------------------------------------------------------------------
def adamw(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step):
    """In place, as `minigrad.optim.adam` (same operations, same rounding), with two
    reused scratch buffers instead of a temporary per operator."""
    denom, update = (b[:param.size].reshape(param.shape)
                     for b in _SCRATCH.get(2, param.size, param.dtype))
    if weight_decay:
        param *= 1 - lr * weight_decay
    np.subtract(grad, exp_avg, out=update)
    update *= 1 - beta1
    exp_avg += update
    exp_avg_sq *= beta2
    np.multiply(grad, 1 - beta2, out=update)
    update *= grad
    exp_avg_sq += update
    np.sqrt(exp_avg_sq, out=denom)
    denom /= math.sqrt(1 - beta2 ** step)
    denom += eps
    np.multiply(exp_avg, lr / (1 - beta1 ** step), out=update)
    update /= denom
    param -= update


def cpu_kernels() -> dict:
    """The `Device.kernels` entries of the NumPy device."""
    return {"gelu": GeluKernel(), "adamw": adamw}


@contextmanager
def kernels_disabled(device):
    """Run the ops' array-API code on `device` for the duration (kernels restored after)."""
    saved = device.kernels
    device.kernels = {}
    try:
        yield device
    finally:
        device.kernels = saved
