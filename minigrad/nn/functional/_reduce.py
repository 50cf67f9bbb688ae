"""Row sums and row dot products for the fused ops.

A sum over the last axis is a dot product of each row with a vector of ones (`vecdot`),
and a dot product of two arrays along an axis needs no temporary for the product. On
short rows (a (3072, 384) float32 array) NumPy's pairwise `sum` costs about 3x a
`vecdot` with ones. A BLAS GEMV with ones would be faster still on an idle machine, but
OpenBLAS runs it multi-threaded, and on a shared, oversubscribed machine those threads
stall (30 ms instead of 40 us measured); `vecdot` runs on one thread. Both accumulate in
the input's dtype.
"""

from __future__ import annotations


def sum_last(device, x):
    """x.sum(axis=-1, keepdims=True) as the dot product of every row with ones."""
    xp = device.xp
    return xp.expand_dims(xp.vecdot(x, device.ones((x.shape[-1],), x.dtype)), axis=-1)


def sum_axis(device, x, axis: int):
    """x.sum(axis=axis, keepdims=True); `axis` non-negative."""
    if axis == x.ndim - 1:
        return sum_last(device, x)
    return device.xp.sum(x, axis=axis, keepdims=True)


def dot_axis(xp, a, b, axis: int):
    """(a * b).sum(axis=axis, keepdims=True) without materialising a * b."""
    axis = axis - a.ndim if axis >= 0 else axis  # the standard's vecdot wants it negative
    return xp.expand_dims(xp.vecdot(a, b, axis=axis), axis=axis)
