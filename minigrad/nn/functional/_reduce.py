"""Row sums, column sums and row dot products for the fused ops.

A sum over the last axis is a dot product of each row with a vector of ones (`vecdot`),
and a dot product of two arrays along an axis needs no temporary for the product. On
short rows (a (3072, 384) float32 array) NumPy's pairwise `sum` costs about 3x a
`vecdot` with ones. Each row's result is computed alike wherever the row lies, so rows
split among workers give the same numbers. A sum over the rows of a matrix (a bias's or
a norm gain's gradient) is ones @ x, a GEMV through `Device.matmul`, which the CPU
backend runs on one BLAS thread (a multithreaded OpenBLAS GEMV stalled on a shared,
oversubscribed machine: 30 ms instead of 40 us): on a (768, 128) float32 array 6 us
where NumPy's `sum(axis=0)` takes 18 us. All accumulate in the input's dtype.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=64)
def ones_vector(device, size: int, dtype):
    """A vector of `size` ones, made once per (device, size, dtype) and cached: a training
    step sums along the same few sizes dozens of times. Callers only read it."""
    return device.ones((size,), dtype)


def sum_last(device, x):
    """x.sum(axis=-1, keepdims=True) as the dot product of every row with ones."""
    return device.xp.vecdot(x, ones_vector(device, x.shape[-1], x.dtype))[..., None]


def sum_rows(device, x):
    """x.sum(axis=0) of a matrix x (N, D) as ones (N,) @ x: (D,)."""
    return device.matmul(ones_vector(device, x.shape[0], x.dtype), x)


def sum_axis(device, x, axis: int):
    """x.sum(axis=axis, keepdims=True); `axis` non-negative."""
    if axis == x.ndim - 1:
        return sum_last(device, x)
    return device.xp.sum(x, axis=axis, keepdims=True)


def dot_axis(xp, a, b, axis: int):
    """(a * b).sum(axis=axis, keepdims=True) without materialising a * b."""
    axis = axis - a.ndim if axis >= 0 else axis  # the standard's vecdot wants it negative
    if axis == -1:  # the common case, without expand_dims's overhead (NumPy: 2 us a call)
        return xp.vecdot(a, b)[..., None]
    return xp.expand_dims(xp.vecdot(a, b, axis=axis), axis=axis)
