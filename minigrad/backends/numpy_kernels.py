"""CPU kernels of the NumPy device: fused ops run block by block with in-place ufuncs.

NumPy makes one pass over memory per operator and allocates a temporary for each. On
GPT-sized activations (a (2048, 1536) float32 array is 12 MB; three of them overflow
the L3 cache) every pass streams from main memory. These kernels walk their inputs in
flat blocks of `BLOCK_BYTES`, write every intermediate into a block-sized scratch
buffer with ``out=``, so that all the passes over one block run in the L2 cache, and
allocate only their outputs; the blocks are dealt among the device's worker threads
(`NumpyDevice.parallel_map`: NumPy's ufuncs release the GIL), one contiguous run each.
The math is that of the op's own array-API code, which stays the reference
(tests/minigrad/test_cpu_kernels.py).

Kernels exist only where they measured faster than the array-API code in a GPT training
step: GELU (about 3x). LayerNorm's rows (2048 x 384 float32) fit in L3, where its
array-API code already runs at NumPy's per-pass cost; a blocked version measured slower
(Python overhead per block), so it has none. The optimizer update runs the one AdamW
formula (`minigrad.backends.device.adamw_step`) with reused scratch buffers.

`fused_ops()` is the NumPy device's `Device.fused_ops` table (the protocol is in
`minigrad.backends.device`).
"""

from __future__ import annotations

import threading

import numpy as np

from minigrad.backends.device import adamw_step
from minigrad.backends.erf import erf
from minigrad.nn.functional.gelu import GELU, GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI

# Bytes of one block: the block's slices of the inputs, outputs and scratch fit in L2
# (measured on GELU: 32 KB blocks 1.5x slower than 256 KB, 512 KB no faster).
BLOCK_BYTES = 1 << 18
# Elements from which a kernel's blocks are dealt among the device's workers (a T-config
# GELU, 2^18.6 elements, runs faster on one; an S-config one is 2^24.6).
PARALLEL_WORK = 1 << 21

class _Scratch(threading.local):
    """Reusable block-sized buffers, one set per dtype and thread (grown on demand, never
    freed): the device's worker threads each run their part of a kernel in their own."""

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


def _parts(device, total: int, itemsize: int) -> list[range]:
    """The blocks of range(total) (BLOCK_BYTES each, elements of `itemsize` bytes) dealt
    into one contiguous run per worker of the device (`Device.parallel_map`): each
    part a range of block starts."""
    step = BLOCK_BYTES // itemsize
    n_blocks = -(-total // step)
    n = max(1, min(device.workers, n_blocks)) if total >= PARALLEL_WORK else 1
    bounds = [n_blocks * i // n * step for i in range(n + 1)]
    return [range(lo, min(hi, total), step) for lo, hi in zip(bounds, bounds[1:])]


def _blocks(part: range, total: int):
    """The slices of one part's blocks."""
    for start in part:
        yield slice(start, min(start + part.step, total))


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1)


# -- GELU ------------------------------------------------------------------------------
class GeluKernel:
    """F.gelu (the math is in `minigrad.nn.functional.gelu`), blocked, the blocks dealt
    among the device's workers. Saves x and h = (1 + t) / 2 (tanh) or Phi(x) (none), as
    the op's array-API code does."""

    def supports(self, fn, a) -> bool:
        return True

    def forward(self, fn, a):
        x = _flat(a)
        out = np.empty_like(x)
        saved = np.empty_like(x)  # h (tanh) or Phi (exact)

        def run(part):
            (u,) = _SCRATCH.get(1, min(x.size, BLOCK_BYTES // x.itemsize), x.dtype)
            for s in _blocks(part, x.size):
                xb, ob, sb, ub = x[s], out[s], saved[s], u[:s.stop - s.start]
                if fn.approximate == "tanh":
                    np.multiply(xb, xb, out=ub)
                    ub *= GELU_CUBIC * SQRT_2_OVER_PI
                    ub += SQRT_2_OVER_PI
                    ub *= xb
                    np.tanh(ub, out=sb)
                    sb += 1
                    sb *= 0.5  # h
                    np.multiply(xb, sb, out=ob)
                else:
                    np.multiply(xb, INV_SQRT_2, out=ub)
                    sb[...] = erf(ub)
                    sb += 1
                    sb *= 0.5
                    np.multiply(xb, sb, out=ob)

        fn.device.parallel_map(run, _parts(fn.device, x.size, x.itemsize))
        fn.save_for_backward(x, saved)
        return out.reshape(a.shape)

    def backward(self, fn, g):
        x, saved = fn.saved
        gf = _flat(g)
        dx = np.empty_like(x)

        def run(part):
            (u,) = _SCRATCH.get(1, min(x.size, BLOCK_BYTES // x.itemsize), x.dtype)
            for s in _blocks(part, x.size):
                xb, sb, db, ub = x[s], saved[s], dx[s], u[:s.stop - s.start]
                if fn.approximate == "tanh":
                    np.multiply(xb, xb, out=db)
                    db *= 6 * GELU_CUBIC * SQRT_2_OVER_PI
                    db += 2 * SQRT_2_OVER_PI  # 2 du/dx
                    db *= xb
                    np.subtract(1, sb, out=ub)
                    ub *= sb  # h (1 - h)
                    db *= ub
                    db += sb
                else:
                    np.multiply(xb, xb, out=ub)
                    ub *= -0.5
                    np.exp(ub, out=ub)
                    np.multiply(xb, INV_SQRT_2PI, out=db)
                    db *= ub  # x phi(x)
                    db += sb
                db *= gf[s]

        fn.device.parallel_map(run, _parts(fn.device, x.size, x.itemsize))
        return dx.reshape(g.shape)


# -- AdamW -----------------------------------------------------------------------------
def adamw_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                 step) -> None:
    """`Device.adamw_update`: the AdamW formula with two reused block-sized scratch
    buffers instead of new ones per call (the optimizer hands over blocks of
    `NumpyDevice.block_bytes`)."""
    update, denom = (b[:param.size].reshape(param.shape)
                     for b in _SCRATCH.get(2, param.size, param.dtype))
    adamw_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
               update, denom)


def fused_ops() -> dict:
    """The `Device.fused_ops` table of the NumPy device."""
    return {GELU.name: GeluKernel()}
