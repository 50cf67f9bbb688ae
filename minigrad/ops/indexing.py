"""Indexing: getitem (basic and integer-array indexing), where, masked_fill.

The backward of getitem writes the gradient back into a zero tensor of the input's
shape. With integer-array indices the same element can be picked several times, so the
write is a scatter-add (the backend's `index_add` primitive), never a plain assignment.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.backends import dtype_name
from minigrad.ops._util import as_tensor, grad_like, is_scalar
from minigrad.tensor import Tensor


class GetItem(Function):
    name = "getitem"

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
    'advanced' (integer arrays, or a boolean mask beside other indices), which goes
    through the device's gather / index_add primitives."""
    parts = key if isinstance(key, tuple) else (key,)
    converted, advanced = [], False
    for k in parts:
        if isinstance(k, Tensor):
            k = k.data if k.device is device else device.asarray(k.numpy())
        elif isinstance(k, list):
            k = device.asarray(k)
        if device.is_array(k):
            if device.is_floating(k.dtype):
                raise IndexError(f"getitem: index arrays must be integer or boolean, got "
                                 f"{dtype_name(k.dtype)}")
            # The array API allows a boolean mask only as the sole index.
            advanced = advanced or k.dtype != device.dtype("bool") or len(parts) > 1
        converted.append(k)
    return (tuple(converted) if isinstance(key, tuple) else converted[0]), advanced


def getitem(a: Tensor, key) -> Tensor:
    key, advanced = _device_key(key, a.device)
    parts = key if isinstance(key, tuple) else (key,)
    new_axes = None
    if not advanced and any(k is None for k in parts):
        # `None` becomes a reshape after indexing: portable to every array library.
        parts, new_axes = _split_new_axes(parts, a.ndim)
    named = _dims_named(parts, a.device)
    if not any(k is Ellipsis for k in parts) and named < a.ndim and not _is_mask(parts, a):
        parts = parts + (Ellipsis,)  # the array API wants every dim named
    parts = _bounded_slices(parts, a.shape, named, a.device)
    try:
        out = GetItem(parts if len(parts) != 1 else parts[0], advanced)(a)
    except IndexError as exc:
        raise IndexError(f"getitem: index {_describe(key)} into shape {a.shape}: "
                         f"{exc.__cause__ or exc}") from None
    if new_axes is not None:
        shape = list(out.shape)
        for axis in new_axes:
            shape.insert(axis, 1)
        out = out.reshape(tuple(shape))
    return out


def _is_mask(parts: tuple, a: Tensor) -> bool:
    return len(parts) == 1 and a.device.is_array(parts[0]) and (
        parts[0].dtype == a.device.dtype("bool"))


def _dims_named(parts: tuple, device) -> int:
    """How many input dims an index names."""
    return sum(_dims_of(k, device) for k in parts if k is not Ellipsis)


def _dims_of(part, device) -> int:
    """Input dims one index part names: none for None, all of a boolean mask's, else 1."""
    if part is None:
        return 0
    return part.ndim if device.is_array(part) and part.dtype == device.dtype("bool") else 1


def _bounded_slices(parts: tuple, shape: tuple, named: int, device) -> tuple:
    """Slices with bounds resolved against their axis' length: the array API leaves
    out-of-range bounds unspecified (array-api-strict rejects them)."""
    out, axis = [], 0
    for k in parts:
        if k is Ellipsis:
            axis += len(shape) - named
        elif isinstance(k, slice):
            if axis < len(shape):  # else too many indices: the backend says so
                start, stop, step = k.indices(shape[axis])
                # indices() writes "before element 0" as -1, which a slice reads as "last"
                if step < 0 and start < 0:
                    k = slice(0, 0)  # starts before element 0 and goes down: empty
                else:
                    k = slice(start, None if stop < 0 else stop, step)
            axis += 1
        else:
            axis += _dims_of(k, device)
        out.append(k)
    return tuple(out)


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
    if not isinstance(cond, Tensor) or cond.dtype != cond.device.dtype("bool"):
        got = dtype_name(cond.dtype) if isinstance(cond, Tensor) else type(cond).__name__
        raise TypeError(f"where: cond must be a boolean Tensor, got {got}")
    like = a if isinstance(a, Tensor) else b
    if is_scalar(a) and is_scalar(b):
        raise TypeError("where: at least one of a, b must be a Tensor")
    return Where()(cond, as_tensor(a, like), as_tensor(b, like))


def masked_fill(a: Tensor, mask, value) -> Tensor:
    mask = mask if isinstance(mask, Tensor) else Tensor(mask, device=a.device)
    if mask.dtype != a.device.dtype("bool"):
        raise TypeError(f"masked_fill: mask must be boolean, got {dtype_name(mask.dtype)}")
    if mask.ndim > a.ndim or any(m not in (1, n) for m, n in zip(mask.shape[::-1],
                                                                  a.shape[::-1])):
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to the "
                         f"tensor's shape {a.shape}")
    return MaskedFill(value)(a, mask)
