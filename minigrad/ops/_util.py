"""Helpers shared by the op modules: broadcasting reduction, axis normalisation, operands."""

from __future__ import annotations

from numbers import Number

from minigrad.tensor import Tensor


def sum_to(xp, g, shape: tuple):
    """Sum a broadcast gradient back to `shape` (the inverse of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape)


def grad_like(xp, g, shape: tuple, dtype):
    """`sum_to` plus a cast back to the input's dtype (for mixed-dtype ops)."""
    return cast_to(xp, sum_to(xp, g, shape), dtype)


def cast_to(xp, g, dtype):
    """g in `dtype`: an input's gradient has the input's dtype, whatever the op promoted to."""
    return g if g.dtype == dtype else xp.astype(g, dtype)


def normalize_axes(op: str, axis, ndim: int) -> tuple:
    """axis (None, int or tuple, negatives allowed) -> a sorted tuple of non-negative axes.

    A 0-d tensor accepts axis 0 or -1 (as in PyTorch) and has no axes to reduce: ()."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dims")
        if ndim:
            out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    """One axis (negatives allowed) -> its non-negative index; 0-d tensors have none."""
    if ndim == 0:
        raise ValueError(f"{op}: a 0-d tensor has no axis {axis}")
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dims")
    return axis % ndim


def dim_alias(op: str, dim, axis, default=None):
    """PyTorch's `dim`, or NumPy's alias `axis` (PyTorch accepts both); not both at once."""
    if axis is None:
        return default if dim is None else dim
    if dim is not None:
        raise TypeError(f"{op}: give dim or its alias axis, not both")
    return axis


def keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    """The shape of a reduction over `axes` with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def is_scalar(x) -> bool:
    # The Tensor test first: it is the common case, and cheaper than the ABC check.
    return not isinstance(x, Tensor) and isinstance(x, Number)


def scalar_value(c):
    """A Python or NumPy scalar as a Python number: a NumPy scalar (np.float64(0.5))
    would promote a float32 array to float64, where PyTorch keeps the tensor's dtype."""
    kind = type(c)
    if kind is float or kind is int or kind is bool:
        return c
    return c.item() if hasattr(c, "item") else float(c)


def promote_pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """PyTorch's promotion for two tensors of different dtypes: a 0-d tensor takes the
    other's dtype when both are floating point (or both integer), as a scalar would;
    otherwise the array library promotes (float32 with float64 gives float64)."""
    da, db = a.dtype, b.dtype
    if da is db or da == db or (a.ndim == 0) == (b.ndim == 0):
        return a, b
    if _category(a) != _category(b):
        return a, b
    return (a.astype(db), b) if a.ndim == 0 else (a, b.astype(da))


def _category(t: Tensor) -> str:
    if t.device.is_floating(t.dtype):
        return "float"
    return "bool" if t.dtype == t.device.dtype("bool") else "integer"


def to_floating(a: Tensor) -> Tensor:
    """a, or for an integer or bool a its float32 copy: PyTorch's float functions (exp,
    sin, logsumexp, ...) promote such inputs to the default dtype, where NumPy gives
    float64 (float16 for bool)."""
    return a if a.device.is_floating(a.dtype) else a.astype("float32")


def require_floating(op: str, a: Tensor) -> None:
    """Raise as PyTorch does for ops defined on floating-point tensors only (mean, var)."""
    if not a.device.is_floating(a.dtype):
        raise TypeError(f"{op}: needs a floating-point tensor, got {a.dtype}; "
                        f"convert it first (x.float())")


def as_tensor(x, like: Tensor) -> Tensor:
    """x as a Tensor on like's device; Python scalars take like's dtype."""
    if isinstance(x, Tensor):
        return x
    if is_scalar(x):
        return Tensor(like.device.full((), scalar_value(x), like.dtype), device=like.device)
    return Tensor(x, device=like.device)


def shape_str(*shapes) -> str:
    return ", ".join(str(tuple(s)) for s in shapes)
