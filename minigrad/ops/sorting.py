"""Sorting along a dim: sort, argsort, topk. The values are a gather of the input at the
sorted indices (`take_along_dim`), so the gradient of each value goes back to the
element it came from; the indices carry no gradient."""

from __future__ import annotations

from minigrad.ops._util import normalize_axis
from minigrad.ops.indexing import take_along_dim
from minigrad.ops.reductions import ValuesIndices
from minigrad.tensor import Tensor


def argsort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """The indices that sort a along dim (ties keep their order: a stable sort)."""
    if a.ndim == 0:
        return Tensor._from_op(a.device.zeros((), "int64"), a.device, None, 0, False)
    dim = normalize_axis("argsort", dim, a.ndim)
    xp = a.device.xp
    if not descending:
        out = xp.argsort(a.data, axis=dim, stable=True)
    else:
        # NumPy's argsort has no `descending`: sort the reversed array ascending, reverse
        # that (largest first, ties now in their original order) and map the positions
        # back: index i of the reversed array is n - 1 - i of the original.
        n = a.shape[dim]
        reverse = xp.argsort(xp.flip(a.data, axis=dim), axis=dim, stable=True)
        out = (n - 1) - xp.flip(reverse, axis=dim)
    return Tensor._from_op(out, a.device, None, 0, False)


def sort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = True):
    """(values, indices) of a sorted along dim, as torch.sort."""
    indices = argsort(a, dim, descending)
    if a.ndim == 0:
        return ValuesIndices(a.reshape(()), indices)
    return ValuesIndices(take_along_dim(a, indices, dim), indices)


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the k largest (or smallest) elements along dim, largest first
    (ties: the lower index first)."""
    n = a.shape[normalize_axis("topk", dim, a.ndim)] if a.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}], got {k!r}")
    if a.ndim == 0:
        return sort(a)
    dim = normalize_axis("topk", dim, a.ndim)
    order = argsort(a, dim, descending=largest)
    key = (slice(None),) * dim + (slice(0, k), Ellipsis)
    indices = Tensor._from_op(order.data[key], a.device, None, 0, False)
    return ValuesIndices(take_along_dim(a, indices, dim), indices)
