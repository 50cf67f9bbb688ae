"""The op table that drives the op suite: one `OpSpec` per op (or per calling form).

Each spec names the minigrad call, the PyTorch call that must agree with it, a strategy
for the cases to try (input shapes and non-tensor parameters) and the domain the float
inputs come from. `test_ops_gradcheck.py`, `test_ops_torch_parity.py` and
`test_strict_device.py` all iterate over `OP_SPECS`, on the 'cpu' and 'strict' devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import testing as mt

# The device fixture is a plain string, so reusing it across examples is safe.
OP_SETTINGS = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Case:
    """One call: input shapes, input kinds ('f' float, 'b' bool), keyword parameters."""

    shapes: tuple
    params: dict = field(default_factory=dict)
    kinds: str = ""

    def kind(self, i: int) -> str:
        return self.kinds[i] if self.kinds else "f"


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable  # fn(*minigrad tensors, **params)
    cases: st.SearchStrategy  # of Case
    torch_fn: Callable | None = None  # same call on torch tensors; None: fn works on both
    domain: mt.Domain = field(default_factory=mt.real)

    def torch_call(self, *args, **params):
        return (self.torch_fn or self.fn)(*args, **params)


# -- drawing inputs ----------------------------------------------------------------------
def draw_inputs(data, spec: OpSpec) -> tuple[Case, list]:
    """A case and its input arrays (float64 NumPy; bool for 'b' inputs)."""
    case = data.draw(spec.cases, label="case")
    arrays = [data.draw(mt.arrays(shape, domain=spec.domain) if case.kind(i) == "f"
                        else mt.arrays(shape, dtype=bool), label=f"input {i}")
              for i, shape in enumerate(case.shapes)]
    floats = [i for i in range(len(arrays)) if case.kind(i) == "f"]
    if spec.domain.distinct and floats:  # no ties across inputs either
        spread = mt.separate(*(arrays[i] for i in floats), gap=spec.domain.margin)
        for i, a in zip(floats, spread):
            arrays[i] = a
    return case, arrays


def minigrad_inputs(case: Case, arrays, device, dtype) -> list:
    return [mg.tensor(a.astype(dtype), device=device, requires_grad=True)
            if case.kind(i) == "f" else mg.tensor(a, device=device)
            for i, a in enumerate(arrays)]


def torch_inputs(case: Case, arrays, dtype) -> list:
    return [torch.tensor(a.astype(dtype), requires_grad=True) if case.kind(i) == "f"
            else torch.from_numpy(a) for i, a in enumerate(arrays)]


def params_for(params: dict, convert: Callable) -> dict:
    """params with every NumPy array (also inside tuples) passed through convert."""
    def walk(v):
        if isinstance(v, np.ndarray):
            return convert(v)
        if isinstance(v, tuple):
            return tuple(walk(x) for x in v)
        return v

    return {k: walk(v) for k, v in params.items()}


def as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


# -- case strategies -----------------------------------------------------------------------
def elementwise(n: int = 1, min_side: int = 0, kinds: str = "", **params) -> st.SearchStrategy:
    """n mutually broadcastable inputs (0-d, size-1 and empty axes included)."""
    fixed = st.fixed_dictionaries(params)
    return st.tuples(mt.broadcastable_shapes(n, min_side=min_side), fixed).map(
        lambda sp: Case(sp[0], sp[1], kinds))


def axes_for(ndim: int) -> st.SearchStrategy:
    """None, an int (negative too) or a tuple of distinct axes; 0 / -1 on 0-d tensors."""
    if ndim == 0:
        return st.sampled_from([None, 0, -1])
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                              unique=True).map(tuple))


@st.composite
def reductions(draw, min_side: int = 0, correction: bool = False):
    shape = draw(mt.shapes(min_side=min_side))
    axis = draw(axes_for(len(shape)))
    params = {"axis": axis, "keepdims": draw(st.booleans())}
    if correction:
        axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
        count = math.prod(shape[a] for a in axes) if shape else 1
        params["correction"] = draw(st.sampled_from([0, 1])) if count > 1 else 0
    return Case((shape,), params)


def dims(axis, ndim: int):
    """minigrad's axis -> torch's dim (None means every axis)."""
    return tuple(range(ndim)) if axis is None else axis


@st.composite
def reshapes(draw):
    shape = draw(mt.shapes(min_side=0))
    size = math.prod(shape)
    targets = [(-1,), (size,), tuple(reversed(shape)), (1, *shape), (*shape, 1), (size, 1)]
    if shape and shape[-1]:
        targets.append((-1, shape[-1]))
    return Case((shape,), {"shape": draw(st.sampled_from(targets))})


@st.composite
def permutations(draw):
    shape = draw(mt.shapes(min_side=0))
    ndim = len(shape)
    if draw(st.booleans()):
        return Case((shape,), {"axes": None})
    order = draw(st.permutations(range(ndim)))
    negate = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    return Case((shape,), {"axes": tuple(a - ndim if n else a for a, n in zip(order, negate))})


@st.composite
def swaps(draw):
    shape = draw(mt.shapes(min_dims=1))
    ndim = len(shape)
    axis = st.integers(-ndim, ndim - 1)
    return Case((shape,), {"axis1": draw(axis), "axis2": draw(axis)})


@st.composite
def squeezes(draw):
    shape = draw(mt.shapes(max_side=2))
    ones = [i for i, n in enumerate(shape) if n == 1]
    choices = [st.none()]
    if ones:
        choices += [st.sampled_from(ones),
                    st.lists(st.sampled_from(ones), min_size=1, unique=True).map(tuple)]
    return Case((shape,), {"axis": draw(st.one_of(choices))})


@st.composite
def unsqueezes(draw):
    shape = draw(mt.shapes())
    ndim = len(shape) + 1
    return Case((shape,), {"axis": draw(st.integers(-ndim, ndim - 1))})


@st.composite
def broadcasts(draw):
    shape = draw(mt.shapes(max_dims=2))
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(0, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                          for n in shape)
    return Case((shape,), {"shape": target})


@st.composite
def basic_keys(draw):
    """Keys of ints, slices (negative steps too), None and Ellipsis."""
    shape = draw(mt.shapes(min_dims=1, min_side=1))
    parts = []
    for n in shape:
        parts.append(draw(st.one_of(
            st.integers(-n, n - 1),
            st.builds(slice, st.none() | st.integers(-n - 1, n + 1),
                      st.none() | st.integers(-n - 1, n + 1),
                      st.sampled_from([None, 1, 2, -1, -2])))))
        if draw(st.integers(0, 4)) == 0:
            parts.append(None)
    if draw(st.booleans()):  # replace a run of parts by an Ellipsis
        start = draw(st.integers(0, len(parts)))
        stop = draw(st.integers(start, len(parts)))
        parts[start:stop] = [Ellipsis]
    return Case((shape,), {"key": tuple(parts)})


@st.composite
def integer_array_keys(draw):
    """Integer-array keys with repeated and negative indices on one axis or two."""
    shape = draw(mt.shapes(min_dims=1, min_side=1))
    ndim = len(shape)
    axis = draw(st.integers(0, ndim - 1))
    index_shape = draw(mt.shapes(min_dims=1, max_dims=2))

    def indices(n):
        return np.array(draw(st.lists(st.integers(-n, n - 1), min_size=math.prod(index_shape),
                                      max_size=math.prod(index_shape)))).reshape(index_shape)

    key = (slice(None),) * axis + (indices(shape[axis]),)
    if axis + 1 < ndim and draw(st.booleans()):  # a second array, broadcast with the first
        key += (indices(shape[axis + 1]),)
    return Case((shape,), {"key": key})


@st.composite
def mask_keys(draw):
    shape = draw(mt.shapes(min_dims=1))
    lead = draw(st.integers(1, len(shape)))
    mask = draw(mt.arrays(shape[:lead], dtype=bool))
    return Case((shape,), {"key": (mask,)})


@st.composite
def joins(draw, stack: bool = False):
    n = draw(st.integers(1, 3))
    shape = draw(mt.shapes(min_dims=0 if stack else 1, min_side=0))
    ndim = len(shape) + stack
    axis = draw(st.integers(-ndim, ndim - 1))
    if stack:
        return Case((shape,) * n, {"axis": axis})
    lengths = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    shapes = tuple(shape[:axis % ndim] + (k,) + shape[axis % ndim + 1:] for k in lengths)
    return Case(shapes, {"axis": axis})


@st.composite
def splits(draw):
    shape = draw(mt.shapes(min_dims=1, min_side=0))
    ndim = len(shape)
    axis = draw(st.integers(-ndim, ndim - 1))
    length = shape[axis]
    if draw(st.booleans()):
        sections = draw(st.integers(1, 4))
    else:
        cuts = sorted(draw(st.lists(st.integers(0, length), max_size=3)))
        sections = [b - a for a, b in zip([0, *cuts], [*cuts, length])]
    return Case((shape,), {"sections": sections, "axis": axis})


@st.composite
def masked_fills(draw):
    shape = draw(mt.shapes(min_side=0))
    mask_shape = tuple(draw(st.sampled_from([n, 1])) for n in shape)
    mask_shape = mask_shape[draw(st.integers(0, len(shape))):]
    return Case((shape, mask_shape), {"value": draw(st.sampled_from([0.0, -1.5, 7.0]))}, "fb")


@st.composite
def matmuls(draw):
    """The 1-D cases (vector @ vector, vector @ matrix, matrix @ vector) and batched
    matrices whose batch dims broadcast."""
    k = draw(st.integers(1, 3))
    batch_a, batch_b = draw(mt.broadcastable_shapes(2, max_dims=2))
    a = draw(st.sampled_from([(k,), (*batch_a, draw(st.integers(1, 3)), k)]))
    b = draw(st.sampled_from([(k,), (*batch_b, k, draw(st.integers(1, 3)))]))
    return Case((a, b))


# -- torch counterparts that need more than a different name ------------------------------
def torch_getitem(x, key):
    """x[key] in torch, which has no negative slice steps: flip the axis instead."""
    parts = list(key)
    named = sum(1 for k in parts if k is not None and k is not Ellipsis)
    axis = 0
    for i, k in enumerate(parts):
        if k is Ellipsis:
            axis += x.ndim - named
        elif isinstance(k, slice):
            n = x.shape[axis]
            start, stop, step = k.indices(n)
            if step < 0:  # elements start, start+step, ... > stop; flipped: n-1-i
                x = torch.flip(x, (axis,))
                parts[i] = slice(n - 1 - start, n - 1 - stop, -step)
            axis += 1
        elif k is not None:
            axis += 1
    return x[tuple(parts)]


def torch_squeeze(x, axis):
    return x.squeeze() if axis is None else x.squeeze(axis)


def torch_transpose(x, axes):
    return x.permute(tuple(axes if axes is not None else reversed(range(x.ndim))))


def torch_split(x, sections, axis):
    return torch.split(x, sections, dim=axis)


def _reflected(op):
    """fn(x, c, reflected): the binary operator with a Python scalar on either side."""
    return lambda x, c, reflected: op(c, x) if reflected else op(x, c)


def _scalar_cases(values):
    return elementwise(c=st.sampled_from(values), reflected=st.booleans())


# -- the table ---------------------------------------------------------------------------
OP_SPECS = [
    # arithmetic, tensor with tensor (broadcasting)
    OpSpec("add", lambda a, b: a + b, elementwise(2)),
    OpSpec("sub", lambda a, b: a - b, elementwise(2)),
    OpSpec("mul", lambda a, b: a * b, elementwise(2)),
    OpSpec("mul_same_tensor", lambda a: a * a, elementwise(1)),
    OpSpec("div", lambda a, b: a / b, elementwise(2), domain=mt.safe_domain("div")),
    OpSpec("pow", lambda a, b: a**b, elementwise(2), domain=mt.safe_domain("pow")),
    OpSpec("maximum", mg.maximum, elementwise(2), torch.maximum, mt.safe_domain("maximum")),
    OpSpec("minimum", mg.minimum, elementwise(2), torch.minimum, mt.safe_domain("minimum")),
    OpSpec("maximum_scalar", lambda x: mg.maximum(x, 0.5), elementwise(),
           lambda x: torch.maximum(x, torch.tensor(0.5, dtype=x.dtype)),
           mt.away_from(0.5)),
    # arithmetic with a Python scalar on either side
    OpSpec("add_scalar", _reflected(lambda a, b: a + b), _scalar_cases([2.5, -1, 0])),
    OpSpec("sub_scalar", _reflected(lambda a, b: a - b), _scalar_cases([2.5, -1])),
    OpSpec("mul_scalar", _reflected(lambda a, b: a * b), _scalar_cases([2.5, -3, 0])),
    OpSpec("div_scalar", lambda x, c: x / c, elementwise(c=st.sampled_from([2.5, -0.5]))),
    OpSpec("rdiv_scalar", lambda x, c: c / x, elementwise(c=st.sampled_from([2.5, -1])),
           domain=mt.safe_domain("rdiv")),
    OpSpec("pow_scalar", lambda x, c: x**c,
           elementwise(c=st.sampled_from([0, 1, 2, 3, -1, 0.5, -1.5, 2.5])),
           domain=mt.safe_domain("pow")),
    OpSpec("rpow_scalar", lambda x, c: c**x, elementwise(c=st.sampled_from([2.0, 0.5, math.e])),
           domain=mt.safe_domain("rpow")),
    # elementwise math and activations
    OpSpec("neg", lambda x: -x, elementwise()),
    OpSpec("exp", mg.exp, elementwise(), torch.exp, mt.safe_domain("exp")),
    OpSpec("log", mg.log, elementwise(), torch.log, mt.safe_domain("log")),
    OpSpec("sqrt", mg.sqrt, elementwise(), torch.sqrt, mt.safe_domain("sqrt")),
    OpSpec("abs", mg.abs, elementwise(), torch.abs, mt.safe_domain("abs")),
    OpSpec("tanh", mg.tanh, elementwise(), torch.tanh),
    OpSpec("sigmoid", mg.sigmoid, elementwise(), torch.sigmoid),
    OpSpec("relu", mg.relu, elementwise(), torch.relu, mt.safe_domain("relu")),
    OpSpec("gelu", mg.gelu, elementwise(approximate=st.sampled_from(["none", "tanh"])),
           F.gelu),
    OpSpec("silu", mg.silu, elementwise(), F.silu),
    OpSpec("clip", lambda x, low, high: x.clip(low, high),
           elementwise(low=st.sampled_from([-1.0, None]), high=st.sampled_from([1.0, None]))
           .filter(lambda c: c.params["low"] is not None or c.params["high"] is not None),
           lambda x, low, high: torch.clamp(x, low, high), mt.away_from(-1.0, 1.0)),
    # reductions
    OpSpec("sum", mg.sum, reductions(),
           lambda x, axis, keepdims: torch.sum(x, dims(axis, x.ndim), keepdims)),
    OpSpec("mean", mg.mean, reductions(min_side=1),
           lambda x, axis, keepdims: torch.mean(x, dims(axis, x.ndim), keepdims)),
    OpSpec("max", mg.max, reductions(min_side=1),
           lambda x, axis, keepdims: torch.amax(x, dims(axis, x.ndim), keepdims),
           mt.safe_domain("max")),
    OpSpec("min", mg.min, reductions(min_side=1),
           lambda x, axis, keepdims: torch.amin(x, dims(axis, x.ndim), keepdims),
           mt.safe_domain("min")),
    OpSpec("var", mg.var, reductions(min_side=1, correction=True),
           lambda x, axis, keepdims, correction: torch.var(
               x, dims(axis, x.ndim), correction=correction, keepdim=keepdims)),
    OpSpec("logsumexp", mg.logsumexp, reductions(min_side=1),
           lambda x, axis, keepdims: torch.logsumexp(x, dims(axis, x.ndim), keepdims)),
    # shapes
    OpSpec("reshape", mg.reshape, reshapes(), torch.reshape),
    OpSpec("transpose", mg.transpose, permutations(), torch_transpose),
    OpSpec("swapaxes", mg.swapaxes, swaps(),
           lambda x, axis1, axis2: torch.swapaxes(x, axis1, axis2)),
    OpSpec("squeeze", mg.squeeze, squeezes(), torch_squeeze),
    OpSpec("unsqueeze", mg.unsqueeze, unsqueezes(), lambda x, axis: torch.unsqueeze(x, axis)),
    OpSpec("broadcast_to", mg.broadcast_to, broadcasts(), lambda x, shape: x.expand(shape)),
    # indexing
    OpSpec("getitem", lambda x, key: x[key], basic_keys(), torch_getitem),
    OpSpec("getitem_int_arrays", lambda x, key: x[key], integer_array_keys()),
    OpSpec("getitem_bool_mask", lambda x, key: x[key], mask_keys()),
    OpSpec("where", mg.where, elementwise(3, kinds="bff"), torch.where),
    OpSpec("where_scalar", lambda c, x: mg.where(c, x, 0.5), elementwise(2, kinds="bf"),
           lambda c, x: torch.where(c, x, 0.5)),
    OpSpec("masked_fill", lambda x, m, value: x.masked_fill(m, value), masked_fills()),
    # joining and splitting
    OpSpec("concatenate", lambda *xs, axis: mg.concatenate(xs, axis), joins(),
           lambda *xs, axis: torch.cat(xs, axis)),
    OpSpec("stack", lambda *xs, axis: mg.stack(xs, axis), joins(stack=True),
           lambda *xs, axis: torch.stack(xs, axis)),
    OpSpec("split", lambda x, sections, axis: x.split(sections, axis), splits(), torch_split),
    # matmul
    OpSpec("matmul", lambda a, b: a @ b, matmuls()),
]
