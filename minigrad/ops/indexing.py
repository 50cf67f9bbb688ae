"""Indexing: getitem (basic and integer-array indexing), where, masked_fill; gather,
take_along_dim, scatter_add, index_select, index_add.

The backward of getitem writes the gradient back into a zero tensor of the input's
shape. With integer-array indices the same element can be picked several times, so the
write is a scatter-add (the backend's `index_add` primitive), never a plain assignment.
"""

from __future__ import annotations

import numbers

from minigrad.autograd import Function
from minigrad.backends import dtype_name
from minigrad.ops._util import as_tensor, cast_to, grad_like, is_scalar, normalize_axis
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
    if advanced and any(_is_int(k) for k in parts):
        select, rest = _split_ints(parts, a.device)
        return getitem(getitem(a, select), rest)
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


def _split_ints(parts: tuple, device) -> tuple[tuple, tuple]:
    """An advanced key with ints -> (the ints and Nones, the rest), applied one after the
    other. PyTorch takes an int beside index arrays as a basic index (a select), where
    NumPy broadcasts it with the arrays: for x of shape (2, 2, 2), x[0, :, [1, 0, 1]] is
    (2, 3) in PyTorch, (3, 2) in NumPy."""
    select = tuple(x for k in parts for x in (
        [k] if _is_int(k) or k is None or k is Ellipsis else [slice(None)] * _dims_of(k, device)))
    rest = tuple(slice(None) if k is None else k for k in parts if not _is_int(k))
    return select, rest


def _is_int(part) -> bool:
    return isinstance(part, numbers.Integral) and not isinstance(part, bool)


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


# -- gathering and scattering along a dim (PyTorch's gather / take_along_dim / scatter_add,
# index_select / index_add) ------------------------------------------------------------
def _along_key(device, index, dim: int) -> tuple:
    """The advanced-index key that picks a[i_0, .., index[i], .., i_n] for every position
    i of `index`: an arange along every other dim (shaped to broadcast), `index` at dim."""
    xp, ndim = device.xp, index.ndim
    key = []
    for d, n in enumerate(index.shape):
        if d == dim:
            key.append(index)
        else:
            shape = (1,) * d + (n,) + (1,) * (ndim - d - 1)
            key.append(xp.reshape(device.arange(n), shape))
    return tuple(key)


class Gather(Function):
    """out[i] = a[i with dim replaced by index[i]]; the backward scatter-adds g there."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, a, index):
        self.in_shape, self.in_dtype = a.shape, a.dtype
        self.key = _along_key(self.device, index, self.dim)
        return self.device.gather(a, self.key)

    def backward(self, g):
        grad = self.device.zeros(self.in_shape, self.in_dtype)
        self.device.index_add(grad, self.key, g)  # repeated indices accumulate
        return grad, None


class ScatterAdd(Function):
    """out = a, then out[i with dim replaced by index[i]] += src[i]; d a = g,
    d src = g gathered at the same places."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, a, index, src):
        xp = self.xp
        self.key = _along_key(self.device, index, self.dim)
        self.src_meta = (src.shape, src.dtype)
        out = xp.asarray(a, copy=True)
        self.device.index_add(out, self.key, xp.astype(src, a.dtype))
        return out

    def backward(self, g):
        gsrc = None
        if self.needs_input_grad[2]:
            gsrc = cast_to(self.xp, self.device.gather(g, self.key), self.src_meta[1])
        return g, None, gsrc


class IndexSelect(Function):
    """out = a.take(index, dim); the backward adds g's slices back at their indices."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, a, index):
        self.in_shape, self.in_dtype = a.shape, a.dtype
        self.save_for_backward(index)
        return self.xp.take(a, index, axis=self.dim)

    def backward(self, g):
        (index,) = self.saved
        grad = self.device.zeros(self.in_shape, self.in_dtype)
        self.device.index_add(grad, (slice(None),) * self.dim + (index,), g)
        return grad, None


class IndexAdd(Function):
    """out = a, then out[.., index[j], ..] += alpha * source[.., j, ..] along dim;
    d a = g, d source = alpha g.take(index, dim)."""

    def __init__(self, dim: int, alpha):
        self.dim, self.alpha = dim, alpha

    def forward(self, a, index, source):
        xp = self.xp
        self.save_for_backward(index)
        self.source_dtype = source.dtype
        out = xp.asarray(a, copy=True)
        values = xp.astype(source, a.dtype)
        self.device.index_add(out, (slice(None),) * self.dim + (index,),
                              values if self.alpha == 1 else values * self.alpha)
        return out

    def backward(self, g):
        (index,) = self.saved
        gsource = None
        if self.needs_input_grad[2]:
            gsource = self.xp.take(g, index, axis=self.dim)
            gsource = cast_to(self.xp, gsource if self.alpha == 1 else gsource * self.alpha,
                              self.source_dtype)
        return g, None, gsource


def _index_tensor(op: str, a: Tensor, index) -> Tensor:
    index = index if isinstance(index, Tensor) else Tensor(index, device=a.device)
    kind = dtype_name(index.dtype)
    if not kind.startswith(("int", "uint")):
        raise TypeError(f"{op}: index must be an integer tensor, got {kind}")
    if index.device is not a.device:
        raise ValueError(f"{op}: index on {index.device}, input on {a.device}")
    return index


def _dim_of(op: str, a: Tensor, dim: int) -> int:
    return normalize_axis(op, dim, a.ndim)


def _check_along(op: str, a: Tensor, index: Tensor, dim: int, src: Tensor | None = None):
    if index.ndim != a.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dims, the input {a.ndim}; they must "
                         "have the same number of dims")
    for d, (n, m) in enumerate(zip(index.shape, a.shape)):
        if d != dim and n > m:
            raise ValueError(f"{op}: index of shape {index.shape} is larger than the input "
                             f"{a.shape} in dim {d}")
    if src is not None and any(n > m for n, m in zip(index.shape, src.shape)):
        raise ValueError(f"{op}: index of shape {index.shape} is larger than src "
                         f"{src.shape}")
    a.device.check_indices(index.data, a.shape[dim], op)


def gather(a: Tensor, dim: int, index) -> Tensor:
    """out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (and so on), as torch.gather:
    index has a's number of dims, no larger than a outside `dim`."""
    index = _index_tensor("gather", a, index)
    dim = _dim_of("gather", a, dim)
    _check_along("gather", a, index, dim)
    return Gather(dim)(a, index)


def take_along_dim(a: Tensor, indices, dim: int) -> Tensor:
    """gather with a and indices broadcast against each other outside `dim`, as
    torch.take_along_dim (the values of argsort / argmax(keepdim=True) indices)."""
    indices = _index_tensor("take_along_dim", a, indices)
    dim = _dim_of("take_along_dim", a, dim)
    if indices.ndim != a.ndim:
        raise ValueError(f"take_along_dim: indices have {indices.ndim} dims, the input "
                         f"{a.ndim}")
    shape = [max(n, m) for n, m in zip(a.shape, indices.shape)]
    a_shape, i_shape = list(shape), list(shape)
    a_shape[dim], i_shape[dim] = a.shape[dim], indices.shape[dim]
    a = a.expand(tuple(a_shape))
    indices = Tensor._from_op(a.device.xp.broadcast_to(indices.data, tuple(i_shape)),
                              a.device, None, 0, False)
    return gather(a, dim, indices)


def scatter_add(a: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """a with src[i] added at a[index[i] in dim], repeated indices accumulating, as
    torch.scatter_add (out of place)."""
    index = _index_tensor("scatter_add", a, index)
    dim = _dim_of("scatter_add", a, dim)
    _check_along("scatter_add", a, index, dim, src)
    if src.shape != index.shape:  # only the part of src that index covers counts
        src = src[tuple(slice(0, n) for n in index.shape)]
    return ScatterAdd(dim)(a, index, src)


def index_select(a: Tensor, dim: int, index) -> Tensor:
    """The slices of a at the positions `index` (1-D) along dim, as torch.index_select."""
    index = _index_tensor("index_select", a, index)
    dim = _dim_of("index_select", a, dim)
    if index.ndim != 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
    a.device.check_indices(index.data, a.shape[dim], "index_select")
    return IndexSelect(dim)(a, index)


def index_add(a: Tensor, dim: int, index, source: Tensor, alpha=1) -> Tensor:
    """a with alpha * source's slices added at the positions `index` (1-D) along dim,
    repeated positions accumulating, as torch.index_add (out of place)."""
    index = _index_tensor("index_add", a, index)
    dim = _dim_of("index_add", a, dim)
    want = a.shape[:dim] + (index.shape[0] if index.ndim == 1 else -1,) + a.shape[dim + 1:]
    if index.ndim != 1 or source.shape != want:
        raise ValueError(f"index_add: index {index.shape} must be 1-D and source "
                         f"{source.shape} shaped like the input {a.shape} with dim {dim} of "
                         "the index's length")
    a.device.check_indices(index.data, a.shape[dim], "index_add")
    return IndexAdd(dim, alpha)(a, index, source)


def narrow(a: Tensor, dim: int, start: int, length: int) -> Tensor:
    """a[..., start:start + length, ...] along dim, as torch.narrow (start may be
    negative; the piece must lie inside the dim)."""
    dim = normalize_axis("narrow", dim, a.ndim)
    n = a.shape[dim]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length <= n - start):
        raise ValueError(f"narrow: start {start} and length {length} leave dim {dim} of "
                         f"length {n}")
    return getitem(a, (slice(None),) * dim + (slice(start, start + length),))


def one_hot(indices: Tensor, num_classes: int = -1) -> Tensor:
    """(...) integer class indices -> (..., num_classes) int64 rows of zeros with a 1 at
    the index, as F.one_hot (num_classes = -1: the largest index + 1, a host read)."""
    indices = _index_tensor("one_hot", indices, indices)
    if num_classes == -1:
        num_classes = int(indices.amax().item()) + 1 if indices.numel() else 0
    indices.device.check_indices(indices.data, num_classes, "one_hot")
    xp = indices.device.xp
    classes = indices.device.arange(num_classes)  # (C,)
    hot = xp.astype(xp.expand_dims(indices.data, axis=-1) == classes, indices.device.dtype("int64"))
    return Tensor._from_op(hot, indices.device, None, 0, False)


class SetItem(Function):
    """out = a with out[key] = value (value broadcast to the indexed part): the function
    behind `Tensor.__setitem__`. d a = g with the written part zeroed; d value = g's
    written part, summed to value's shape. (With repeated integer indices the last
    write wins, and each repeat passes the gradient on.)"""

    name = "setitem"

    def __init__(self, key, advanced: bool, select=None):
        # select: ints applied first as a basic index (a view), see `_split_ints`
        self.key, self.advanced, self.select = key, advanced, select

    def forward(self, a, value):
        self.value_meta = (value.shape, value.dtype)
        out = self.xp.asarray(a, copy=True)
        _selected(out, self.select)[self.key] = self.xp.astype(value, a.dtype)
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = self.xp.asarray(g, copy=True)
            _selected(ga, self.select)[self.key] = 0
        if self.needs_input_grad[1]:
            g = _selected(g, self.select)
            part = self.device.gather(g, self.key) if self.advanced else g[self.key]
            gv = grad_like(self.xp, part, *self.value_meta)
        return ga, gv


def _selected(array, select):
    """array[select], a view of it (basic indexing), or array itself for None."""
    return array if select is None else array[select]


def setitem(a: Tensor, key, value) -> Tensor:
    """a with a[key] = value, out of place and differentiable (see `SetItem`); the
    in-place `Tensor.__setitem__` writes its result back into a."""
    parts, advanced, value, select = _assignment(a, key, value)
    try:
        return SetItem(parts, advanced, select)(a, value)
    except (IndexError, ValueError) as exc:
        raise _assignment_error(a, key, value, exc) from None


def assign(a: Tensor, key, value) -> None:
    """a.data[key] = value, in a's memory, with no graph: `Tensor.__setitem__` when no
    gradient is recorded (writing a KV cache costs the written part only)."""
    parts, _, value, select = _assignment(a, key, value)
    try:
        _selected(a.data, select)[parts] = a.device.xp.astype(value.data, a.dtype)
    except (IndexError, ValueError) as exc:
        raise _assignment_error(a, key, value, exc) from None


def _assignment(a: Tensor, key, value):
    """(key as device arrays and bounded slices, whether advanced, value as a Tensor, and
    the ints to select first, or None: see `_split_ints`)."""
    key, advanced = _device_key(key, a.device)
    parts = key if isinstance(key, tuple) else (key,)
    if any(k is None for k in parts):
        raise IndexError("setitem: None (a new axis) is not allowed in an assignment key")
    named = _dims_named(parts, a.device)
    if not any(k is Ellipsis for k in parts) and named < a.ndim and not _is_mask(parts, a):
        parts = parts + (Ellipsis,)
    parts = _bounded_slices(parts, a.shape, named, a.device)
    select = None
    if advanced and any(_is_int(k) for k in parts):  # as in getitem: the ints first
        select, parts = _split_ints(parts, a.device)
    return (parts if len(parts) != 1 else parts[0]), advanced, as_tensor(value, a), select


def _assignment_error(a, key, value, exc) -> Exception:
    return type(exc)(f"setitem: index {_describe(key)} into shape {a.shape}, value of shape "
                     f"{value.shape}: {exc.__cause__ or exc}")
