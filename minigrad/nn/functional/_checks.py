"""Argument checks shared by the fused ops: clear errors before any array work starts."""

from __future__ import annotations

from minigrad import backends
from minigrad.ops._util import normalize_axes


def check_axis(op: str, x, axis: int) -> int:
    """`axis` of x as a non-negative int (x needs at least one dim)."""
    if x.ndim == 0:
        raise ValueError(f"{op}: needs a tensor with at least 1 dim, got a 0-d tensor")
    return normalize_axes(op, axis, x.ndim)[0]


def check_floating(op: str, **tensors) -> None:
    """Every given tensor is floating point and all share one dtype."""
    present = [t for t in tensors.values() if t is not None]
    first = present[0] if present else None
    if first is not None and first.device.is_floating(first.dtype) and all(
            t.dtype == first.dtype for t in present):
        return  # the common case, checked in one pass (it runs on every fused op call)
    named = {name: t for name, t in tensors.items() if t is not None}
    for name, t in named.items():
        if not t.device.is_floating(t.dtype):
            raise TypeError(f"{op}: {name} must be floating point, got "
                            f"{backends.dtype_name(t.dtype)}")
    dtypes = {backends.dtype_name(t.dtype) for t in named.values()}
    if len(dtypes) > 1:
        described = ", ".join(f"{name} {backends.dtype_name(t.dtype)}"
                              for name, t in named.items())
        raise TypeError(f"{op}: dtypes differ ({described}); cast them to one dtype")


def check_integer(op: str, name: str, t) -> None:
    kind = backends.dtype_name(t.dtype)
    if not kind.startswith(("int", "uint")):
        raise TypeError(f"{op}: {name} must be an integer tensor, got {kind}")


def check_normalized_shape(op: str, x, normalized_shape, **params) -> tuple:
    """`normalized_shape` (an int or a tuple) as a tuple, after checking that x ends with
    it and that each given parameter (weight, bias) has exactly that shape."""
    shape = ((normalized_shape,) if isinstance(normalized_shape, int)
             else tuple(normalized_shape))
    if not shape or len(shape) > x.ndim or x.shape[-len(shape):] != shape:
        raise ValueError(f"{op}: input of shape {x.shape} does not end with "
                         f"normalized_shape {shape}")
    for name, p in params.items():
        if p is not None and p.shape != shape:
            raise ValueError(f"{op}: {name} has shape {p.shape}, expected normalized_shape "
                             f"{shape}")
    return shape
