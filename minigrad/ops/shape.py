"""Shape ops, with PyTorch's names and meanings: reshape (and squeeze, unsqueeze, flatten,
unflatten, which are reshapes), permute, transpose (swap two dims), broadcast_to /
expand, flip, roll, repeat / tile, repeat_interleave, clone. Each backward applies the
inverse change to the gradient (a sum where the forward copied elements).

Every call makes a new graph node, even when the shape does not change: a hook or
`retain_grad` on the result then sees only that result's uses.
"""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.ops._util import normalize_axes, normalize_axis, shape_str, sum_to
from minigrad.tensor import Tensor


class Reshape(Function):
    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return self.xp.reshape(a, self.shape)

    def backward(self, g):
        return self.xp.reshape(g, self.in_shape)


class Permute(Function):
    def __init__(self, dims: tuple):
        self.dims = dims

    def forward(self, a):
        return self.xp.permute_dims(a, self.dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return self.xp.permute_dims(g, tuple(inverse))


class BroadcastTo(Function):
    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return self.xp.broadcast_to(a, self.shape)

    def backward(self, g):
        return sum_to(self.xp, g, self.in_shape)


class Flip(Function):
    def __init__(self, dims: tuple):
        self.dims = dims

    def forward(self, a):
        return self.xp.flip(a, axis=self.dims)

    def backward(self, g):
        return self.xp.flip(g, axis=self.dims)


class Roll(Function):
    def __init__(self, shifts: tuple, dims: tuple | None):
        self.shifts, self.dims = shifts, dims

    def forward(self, a):
        return self.xp.roll(a, self.shifts, axis=self.dims)

    def backward(self, g):
        return self.xp.roll(g, tuple(-s for s in self.shifts), axis=self.dims)


class Tile(Function):
    """Repeat the whole tensor `reps[d]` times along every dim d (torch's repeat).
    Backward: view g as (reps_0, n_0, reps_1, n_1, ...) and sum the reps axes."""

    def __init__(self, reps: tuple):
        self.reps = reps

    def forward(self, a):
        self.in_shape = a.shape
        return self.xp.tile(a, self.reps)

    def backward(self, g):
        split = []
        for r, n in zip(self.reps, self.in_shape):
            split += [r, n]
        summed = self.xp.sum(self.xp.reshape(g, tuple(split)),
                             axis=tuple(range(0, len(split), 2)))
        return summed


class RepeatInterleave(Function):
    """Each element repeated `repeats` times in place along dim. Backward: view g's dim
    as (n, repeats) and sum the repeats."""

    def __init__(self, repeats: int, dim: int):
        self.repeats, self.dim = repeats, dim

    def forward(self, a):
        self.in_shape = a.shape
        return self.xp.repeat(a, self.repeats, axis=self.dim)

    def backward(self, g):
        d = self.dim
        shape = self.in_shape[:d] + (self.in_shape[d], self.repeats) + self.in_shape[d + 1:]
        return self.xp.sum(self.xp.reshape(g, shape), axis=d + 1)


class Clone(Function):
    """A copy with its own memory; the gradient passes unchanged."""

    def forward(self, a):
        return self.xp.asarray(a, copy=True)

    def backward(self, g):
        return g


def reshape(a: Tensor, shape) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if shape != a.shape:
        _check_reshape(a.shape, shape)
    return Reshape(shape)(a)


def _check_reshape(old: tuple, new: tuple) -> None:
    size = math.prod(old)
    known = math.prod(n for n in new if n != -1)
    wildcards = new.count(-1)
    if wildcards == 0:
        ok = known == size
    else:
        ok = wildcards == 1 and known != 0 and size % known == 0
    if not ok or any(n < -1 for n in new):
        raise ValueError(f"reshape: cannot reshape tensor of shape {old} ({size} elements) "
                         f"to {new}")


def permute(a: Tensor, dims) -> Tensor:
    """Reorder the dims: result dim i is input dim dims[i] (negatives count from the end)."""
    given = tuple(dims)
    dims = tuple(d % a.ndim if -a.ndim <= d < a.ndim else None for d in given)
    if None in dims or sorted(dims) != list(range(a.ndim)):
        raise ValueError(f"permute: dims {given} are not a permutation of the "
                         f"{a.ndim} dims of a tensor of shape {a.shape}")
    return Permute(dims)(a)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims, as torch.transpose (for a permutation of all dims use `permute`)."""
    if a.ndim == 0:  # PyTorch allows dims 0 / -1 of a 0-d tensor: nothing to swap
        normalize_axes("transpose", (dim0, dim1) if dim0 != dim1 else dim0, 0)
        return Permute(())(a)
    dim0, dim1 = (normalize_axis("transpose", d, a.ndim) for d in (dim0, dim1))
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute(tuple(dims))(a)


swapaxes = swapdims = transpose


def t(a: Tensor) -> Tensor:
    """`.T`: the dims reversed (a matrix transposed; 0-d and 1-d tensors unchanged)."""
    return Permute(tuple(range(a.ndim - 1, -1, -1)))(a)


def matrix_transpose(a: Tensor) -> Tensor:
    """`.mT`: the last two dims swapped (a batch of matrices transposed)."""
    if a.ndim < 2:
        raise ValueError(f"mT: needs a tensor with at least 2 dims, got shape {a.shape}")
    return transpose(a, -2, -1)


def squeeze(a: Tensor, dim=None) -> Tensor:
    """Drop size-1 dims: all of them without dim; else those of `dim` (an int or a tuple)
    that have size 1; a named dim of another size is kept, as in PyTorch."""
    dims = normalize_axes("squeeze", dim, a.ndim)
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if not (i in dims and n == 1)))


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at position `dim` (negative counts from the new end)."""
    ndim = a.ndim + 1
    if not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(f"unsqueeze: dim {dim} out of range for a result with {ndim} dims")
    dim %= ndim
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim (all by default) into one."""
    if a.ndim == 0:
        return reshape(a, (1,))
    start, end = (normalize_axis("flatten", d, a.ndim) for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = math.prod(a.shape[start:end + 1])
    return reshape(a, a.shape[:start] + (merged,) + a.shape[end + 1:])


def unflatten(a: Tensor, dim: int, sizes) -> Tensor:
    """Split dim into `sizes` (one may be -1), as torch.unflatten."""
    dim = normalize_axis("unflatten", dim, a.ndim)
    sizes = tuple(sizes)
    known = math.prod(n for n in sizes if n != -1)
    if sizes.count(-1) == 1 and known:
        sizes = tuple(a.shape[dim] // known if n == -1 else n for n in sizes)
    if math.prod(sizes) != a.shape[dim] or any(n < 0 for n in sizes):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to {a.shape[dim]}, the "
                         f"length of dim {dim} of shape {a.shape}")
    return reshape(a, a.shape[:dim] + sizes + a.shape[dim + 1:])


def broadcast_to(a: Tensor, shape) -> Tensor:
    """Expand size-1 dims and add leading ones; -1 keeps an existing dim's size."""
    target = tuple(shape)
    lead = len(target) - a.ndim
    if lead < 0 or any(n == -1 for n in target[:lead]):
        raise ValueError(f"broadcast_to: cannot broadcast shape {shape_str(a.shape)} "
                         f"to {target}")
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(target))
    if any(n != m and n != 1 for n, m in zip(a.shape, shape[lead:])) or any(n < 0 for n in shape):
        raise ValueError(f"broadcast_to: cannot broadcast shape {shape_str(a.shape)} "
                         f"to {target}")
    return BroadcastTo(shape)(a)


expand = broadcast_to


def flip(a: Tensor, dims) -> Tensor:
    """Reverse the order of the elements along `dims` (an int or a tuple)."""
    dims = normalize_axes("flip", dims, a.ndim) if a.ndim else ()
    return Flip(dims)(a)


def roll(a: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically by `shifts` along `dims` (over the flattened tensor
    without dims), as torch.roll."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: without dims give one shift, got {shifts}")
        return reshape(Roll(shifts, None)(flatten(a)), a.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) != len(shifts):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    return Roll(shifts, tuple(normalize_axis("roll", d, a.ndim) for d in dims))(a)


def repeat(a: Tensor, *sizes) -> Tensor:
    """torch's Tensor.repeat: the whole tensor repeated sizes[d] times along dim d (sizes
    may have more dims than a: a gets leading size-1 dims)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], tuple | list) else sizes
    if len(sizes) < a.ndim or any(not isinstance(n, int) or n < 0 for n in sizes):
        raise ValueError(f"repeat: sizes {sizes} must be non-negative ints, at least one per "
                         f"dim of shape {a.shape}")
    a = reshape(a, (1,) * (len(sizes) - a.ndim) + a.shape)
    return Tile(tuple(sizes))(a)


def tile(a: Tensor, dims) -> Tensor:
    """torch.tile: like repeat, but fewer `dims` than a's dims are padded with ones."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return repeat(a, (1,) * (a.ndim - len(dims)) + dims)


def repeat_interleave(a: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Each element repeated `repeats` times, next to each other, along dim (over the
    flattened tensor without dim). `repeats` is one int here (no per-element counts)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise TypeError(f"repeat_interleave: repeats must be a non-negative int, got "
                        f"{repeats!r}")
    if dim is None:
        return RepeatInterleave(repeats, 0)(flatten(a))
    return RepeatInterleave(repeats, normalize_axis("repeat_interleave", dim, a.ndim))(a)


def clone(a: Tensor) -> Tensor:
    return Clone()(a)
