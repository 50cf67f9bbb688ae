"""Shape ops: reshape (and squeeze, unsqueeze, flatten, which are reshapes),
transpose/permute, swapaxes, broadcast_to/expand. No data changes, so each backward
applies the inverse shape change to the gradient."""

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


class Transpose(Function):
    def __init__(self, axes: tuple):
        self.axes = axes

    def forward(self, a):
        return self.xp.permute_dims(a, self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, axis in enumerate(self.axes):
            inverse[axis] = i
        return self.xp.permute_dims(g, tuple(inverse))


class BroadcastTo(Function):
    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return self.xp.broadcast_to(a, self.shape)

    def backward(self, g):
        return sum_to(self.xp, g, self.in_shape)


def reshape(a: Tensor, shape) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if shape == a.shape:
        return a
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


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (reverse them when axes is None)."""
    if axes is None:
        axes = tuple(range(a.ndim - 1, -1, -1))
    given = tuple(axes)
    axes = tuple(ax % a.ndim if -a.ndim <= ax < a.ndim else None for ax in given)
    if None in axes or sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {given} are not a permutation of the "
                         f"{a.ndim} dims of a tensor of shape {a.shape}")
    return Transpose(axes)(a)


permute = transpose


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    axis1, axis2 = (normalize_axis("swapaxes", ax, a.ndim) for ax in (axis1, axis2))
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(a)


def squeeze(a: Tensor, axis=None) -> Tensor:
    """Drop size-1 axes (all of them when axis is None)."""
    axes = normalize_axes("squeeze", axis, a.ndim)
    if axis is None:
        axes = tuple(i for i in axes if a.shape[i] == 1)
    for i in axes:
        if a.shape[i] != 1:
            raise ValueError(f"squeeze: axis {i} of shape {a.shape} has size {a.shape[i]}, "
                             "not 1")
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if i not in axes))


def unsqueeze(a: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at position `axis` (negative counts from the new end)."""
    ndim = a.ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"unsqueeze: axis {axis} out of range for a result with {ndim} dims")
    axis %= ndim
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def broadcast_to(a: Tensor, shape) -> Tensor:
    """Expand size-1 axes and add leading ones; -1 keeps an existing axis' size."""
    target = tuple(shape)
    lead = len(target) - a.ndim
    if lead < 0 or any(n == -1 for n in target[:lead]):
        raise ValueError(f"broadcast_to: cannot broadcast shape {shape_str(a.shape)} "
                         f"to {target}")
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(target))
    if shape == a.shape:
        return a
    if any(n != m and n != 1 for n, m in zip(a.shape, shape[lead:])) or any(n < 0 for n in shape):
        raise ValueError(f"broadcast_to: cannot broadcast shape {shape_str(a.shape)} "
                         f"to {target}")
    return BroadcastTo(shape)(a)


expand = broadcast_to
