"""Indexing: getitem (basic and integer-array indexing), where, masked_fill.

The backward of getitem writes the gradient back into a zero tensor of the input's
shape. With integer-array indices the same element can be picked several times, so the
write is a scatter-add (the backend's `index_add` primitive), never a plain assignment.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import as_tensor, grad_like, is_scalar
from minigrad.tensor import Tensor


class GetItem(Function):
    def __init__(self, key, advanced: bool):
        self.key, self.advanced = key, advanced

    def forward(self, a):
        self.in_shape, self.in_dtype = a.shape, a.dtype
        return self.device.gather(a, self.key) if self.advanced else a[self.key]

    def backward(self, g):
        grad = self.device.zeros(self.in_shape, self.in_dtype)
        if self.advanced:
            self.device.index_add(grad, self.key, g)
        else:
            grad[self.key] = g
        return grad


class Where(Function):
    """where(cond, a, b): the gradient flows to a where cond holds, to b elsewhere."""

    def forward(self, cond, a, b):
        self.meta = ((a.shape, a.dtype), (b.shape, b.dtype))
        self.save_for_backward(cond)
        return self.xp.where(cond, a, b)

    def backward(self, g):
        xp = self.xp
        (cond,) = self.saved
        zero = xp.zeros_like(g)
        _, need_a, need_b = self.needs_input_grad
        ga = grad_like(xp, xp.where(cond, g, zero), *self.meta[0]) if need_a else None
        gb = grad_like(xp, xp.where(cond, zero, g), *self.meta[1]) if need_b else None
        return None, ga, gb


class MaskedFill(Function):
    """Put `value` where mask holds; the gradient is zero there."""

    def __init__(self, value):
        self.value = value

    def forward(self, a, mask):
        xp = self.xp
        self.meta = (a.shape, a.dtype)
        self.save_for_backward(mask)
        return xp.where(mask, xp.full_like(a, self.value), a)

    def backward(self, g):
        xp = self.xp
        (mask,) = self.saved
        return grad_like(xp, xp.where(mask, xp.zeros_like(g), g), *self.meta), None


def _device_key(key, device):
    """Index key with Tensors and lists turned into device arrays; and whether it is
    'advanced' (contains integer arrays)."""
    parts = key if isinstance(key, tuple) else (key,)
    converted, advanced = [], False
    for k in parts:
        if isinstance(k, Tensor):
            k = k.data if k.device is device else device.asarray(k.numpy())
        elif isinstance(k, list):
            k = device.asarray(k)
        if device.is_array(k):
            if not device.is_floating(k.dtype) and k.dtype != device.dtype("bool"):
                advanced = True
            elif device.is_floating(k.dtype):
                raise IndexError(f"getitem: index arrays must be integer or boolean, got "
                                 f"{k.dtype}")
        converted.append(k)
    return (tuple(converted) if isinstance(key, tuple) else converted[0]), advanced


def getitem(a: Tensor, key) -> Tensor:
    key, advanced = _device_key(key, a.device)
    parts = key if isinstance(key, tuple) else (key,)
    new_axes = None
    if not advanced and any(k is None for k in parts):
        # `None` becomes a reshape after indexing: portable to every array library.
        parts, new_axes = _split_new_axes(parts, a.ndim)
    if not any(k is Ellipsis for k in parts) and _dims_named(parts, a.device) < a.ndim:
        parts = parts + (Ellipsis,)  # the array API wants every dim named
    try:
        out = GetItem(parts if len(parts) != 1 else parts[0], advanced)(a)
    except IndexError as exc:
        raise IndexError(f"getitem: index {_describe(key)} into shape {a.shape}: {exc}") from None
    if new_axes is not None:
        shape = list(out.shape)
        for axis in new_axes:
            shape.insert(axis, 1)
        out = out.reshape(tuple(shape))
    return out


def _dims_named(parts: tuple, device) -> int:
    """How many input dims an index names (a boolean mask names as many as it has)."""
    boolean = device.dtype("bool")
    return sum(k.ndim if hasattr(k, "ndim") and k.dtype == boolean else 1
               for k in parts if k is not None)


def _split_new_axes(parts: tuple, ndim: int) -> tuple[tuple, list]:
    """Drop `None` from a basic index; return the rest and the output positions of the
    size-1 axes the Nones would have made."""
    consumed = sum(1 for k in parts if k is not None and k is not Ellipsis)
    out_dim, positions, rest = 0, [], []
    for k in parts:
        if k is None:
            positions.append(out_dim)
            out_dim += 1
            continue
        rest.append(k)
        if k is Ellipsis:
            out_dim += ndim - consumed
        elif isinstance(k, slice):
            out_dim += 1
    return tuple(rest), positions


def _describe(key) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return "[" + ", ".join(f"array{tuple(k.shape)}" if hasattr(k, "shape") else repr(k)
                           for k in parts) + "]"


def where(cond, a, b) -> Tensor:
    if not isinstance(cond, Tensor):
        raise TypeError(f"where: cond must be a boolean Tensor, got {type(cond).__name__}")
    like = a if isinstance(a, Tensor) else b
    if is_scalar(a) and is_scalar(b):
        raise TypeError("where: at least one of a, b must be a Tensor")
    return Where()(cond, as_tensor(a, like), as_tensor(b, like))


def masked_fill(a: Tensor, mask, value) -> Tensor:
    mask = mask if isinstance(mask, Tensor) else Tensor(mask, device=a.device)
    if mask.dtype != a.device.dtype("bool"):
        raise TypeError(f"masked_fill: mask must be boolean, got {mask.dtype}")
    return MaskedFill(value)(a, mask)
