"""Joining and splitting along a dim: concatenate (cat), stack, split, chunk."""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import cast_to, dim_alias, normalize_axis
from minigrad.tensor import Tensor


def _slice_along(ndim: int, axis: int, index) -> tuple:
    """An index tuple selecting `index` (int or slice) along `axis`."""
    return (slice(None),) * axis + (index, Ellipsis)


class Concatenate(Function):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        self.dtypes = [a.dtype for a in arrays]
        return self.xp.concat(arrays, axis=self.axis)

    def backward(self, g):
        grads, start = [], 0
        for size, dtype, needed in zip(self.sizes, self.dtypes, self.needs_input_grad):
            piece = g[_slice_along(g.ndim, self.axis, slice(start, start + size))]
            grads.append(cast_to(self.xp, piece, dtype) if needed else None)
            start += size
        return tuple(grads)


class Stack(Function):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *arrays):
        self.dtypes = [a.dtype for a in arrays]
        return self.xp.stack(arrays, axis=self.axis)

    def backward(self, g):
        grads = []
        for i, (dtype, needed) in enumerate(zip(self.dtypes, self.needs_input_grad)):
            piece = g[_slice_along(g.ndim, self.axis, i)]
            grads.append(cast_to(self.xp, piece, dtype) if needed else None)
        return tuple(grads)


class Split(Function):
    """One input, several outputs: the pieces between `bounds` along `axis`."""

    def __init__(self, bounds: list, axis: int):
        self.bounds, self.axis = bounds, axis

    def forward(self, a):
        return tuple(a[_slice_along(a.ndim, self.axis, slice(lo, hi))]
                     for lo, hi in zip(self.bounds[:-1], self.bounds[1:]))

    def backward(self, *grads):
        return self.xp.concat(grads, axis=self.axis)


def concatenate(tensors, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    axis = dim_alias("cat", dim, axis, 0)
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    ndim = tensors[0].ndim
    axis = normalize_axis("concatenate", axis, ndim)
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != (
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]):
            raise ValueError("concatenate: shapes " + ", ".join(str(x.shape) for x in tensors)
                             + f" differ outside axis {axis}")
    return Concatenate(axis)(*tensors)


cat = concatenate


def stack(tensors, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    axis = dim_alias("stack", dim, axis, 0)
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError("stack: all tensors need the same shape, got "
                         + ", ".join(str(t.shape) for t in tensors))
    axis = normalize_axis("stack", axis, tensors[0].ndim + 1)
    return Stack(axis)(*tensors)


def split(a: Tensor, split_size_or_sections, dim: int | None = None, *,
          axis: int | None = None) -> tuple:
    """Split into pieces of `split_size` (an int; the last may be smaller) or of the
    given sizes (a list that sums to the dim's length), as torch.split does."""
    axis = dim_alias("split", dim, axis, 0)
    axis = normalize_axis("split", axis, a.ndim)
    length = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split size must be positive, got {step}")
        sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to {length}, the length of "
                             f"axis {axis} of shape {a.shape}")
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    out = Split(bounds, axis)(a)
    return out if isinstance(out, tuple) else (out,)


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` pieces of ceil(n / chunks) along dim (the last smaller; fewer
    pieces when n is small), as torch.chunk."""
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    length = a.shape[normalize_axis("chunk", dim, a.ndim)]
    if length == 0:  # as PyTorch: `chunks` empty pieces
        return split(a, [0] * chunks, dim)
    return split(a, -(-length // chunks), dim)
