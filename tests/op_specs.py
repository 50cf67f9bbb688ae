"""The op table that drives the op suites: one `OpSpec` per op (or per calling form).

Each spec names the minigrad call, its PyTorch twin, a strategy for the calls to try
(`Case`: input shapes or arrays, and other parameters) and the domain float inputs come
from; a fused op of `minigrad.nn.functional` also names its composite twin. The suites
that iterate over `OP_SPECS`, on the 'cpu' and 'strict' devices:
- test_ops_gradcheck.py: backward against float64 finite differences;
- test_ops_torch_parity.py: values and gradients against PyTorch, float64 and float32;
- test_strict_device.py: no host transfer on the GPU stand-in, same results as NumPy;
- test_functional_ops.py: each fused op against its composite twin (`FUSED_SPECS`).

PyTorch is never imported here: a spec names its twin lazily (a dotted name in `torch`,
or a function taking the torch module first), so the finite-difference suite runs with
only NumPy, pytest and hypothesis installed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.testing import strategies as mt

# The device fixture is a plain string, so reusing it across examples is safe.
OP_SETTINGS = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# How close minigrad and PyTorch must be: float64 to ~1e-12, float32 to its own rounding.
TOLERANCES = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-5, "atol": 2e-6}}
# Fused ops compute in another order than PyTorch; in float32, rounding amplified where the
# math is ill-conditioned (a layer_norm row of nearly equal values) moves us apart by a
# few 1e-4 relative.
FUSED_TOLERANCES = {"float64": {"rtol": 1e-9, "atol": 1e-11},
                    "float32": {"rtol": 1e-3, "atol": 1e-4}}


@dataclass(frozen=True)
class Seed:
    """A parameter that becomes a fresh `Generator(value)` at every call, so that every
    evaluation (finite differences, twins) draws the same random numbers."""

    value: int


@dataclass(frozen=True)
class Placeholder:
    """A parameter filled in per run: "device" (the device's name; 'cpu' for PyTorch) or
    "dtype" (the run's float dtype), for creation ops that take no tensor."""

    what: str


DEVICE, DTYPE = Placeholder("device"), Placeholder("dtype")


@dataclass(frozen=True)
class Case:
    """One call: ``fn(*args, **kwargs, **params)``.

    args and kwargs are the tensor inputs: each a shape (float values drawn from the
    spec's domain) or a NumPy array used as given (boolean masks, integer ids, or floats
    made from a seed where hypothesis' shrinking towards equal values would make the op
    ill-conditioned). Float inputs are differentiated. In params, NumPy arrays (also
    inside tuples, as index keys) become constant tensors, a `Seed` a generator and a
    `Placeholder` the run's device or dtype.
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list:
        """args then kwargs values: the order of every list of input tensors below."""
        return [*self.args, *self.kwargs.values()]

    def with_inputs(self, inputs) -> Case:
        n = len(self.args)
        return replace(self, args=tuple(inputs[:n]), kwargs=dict(zip(self.kwargs, inputs[n:])))


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable  # fn(*args, **kwargs, **params) on minigrad tensors
    cases: st.SearchStrategy  # of Case
    # The PyTorch twin: a dotted name in torch ("sin", "nn.functional.gelu"), a function
    # taking the torch module first, None when `fn` itself works on torch tensors (a + b,
    # x.tril(k)), or False for no twin (dropout draws its own random numbers).
    torch: str | Callable | None | bool = None
    domain: mt.Domain = field(default_factory=mt.real)
    composite: Callable | None = None  # a fused op's twin built from primitive ops
    tolerances: dict = field(default_factory=lambda: TOLERANCES)  # against PyTorch
    # False where finite differences do not apply: no float input to differentiate
    # (argmin, one_hot, eye) or a gradient that is zero by definition (embedding's
    # padding row). The finite-difference suite skips them; the others still compare.
    finite_differences: bool = True

    def torch_fn(self, torch) -> Callable:
        if self.torch is None:
            return self.fn
        if isinstance(self.torch, str):
            return functools.reduce(getattr, self.torch.split("."), torch)
        return functools.partial(self.torch, torch)


# -- drawing and running a call -----------------------------------------------------------
def draw_case(data, spec: OpSpec) -> Case:
    """A case of spec with every tensor input an array (float64 where drawn here)."""
    case = data.draw(spec.cases, label="case")
    inputs = [data.draw(mt.arrays(x, domain=spec.domain), label=f"input {i}")
              if isinstance(x, tuple) else x for i, x in enumerate(case.inputs)]
    drawn = [i for i, x in enumerate(case.inputs) if isinstance(x, tuple)]
    if spec.domain.distinct and drawn:  # no ties across inputs either
        spread = mt.separate(*(inputs[i] for i in drawn), gap=spec.domain.margin)
        for i, a in zip(drawn, spread):
            inputs[i] = a
    return case.with_inputs(inputs)


def is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def minigrad_inputs(case: Case, device, dtype) -> list:
    """Float inputs as leaves of `dtype` that require grad, others as constant tensors."""
    return [mg.tensor(a, dtype=dtype, device=device, requires_grad=True) if is_float(a)
            else mg.tensor(a, device=device) for a in case.inputs]


def minigrad_params(case: Case, device, dtype) -> dict:
    def convert(v):
        if isinstance(v, np.ndarray):
            return mg.tensor(v, dtype=dtype if is_float(v) else None, device=device)
        if isinstance(v, Seed):
            return mg.Generator(v.value, device=device)
        if isinstance(v, Placeholder):
            return device if v.what == "device" else dtype
        return tuple(convert(x) for x in v) if isinstance(v, tuple) else v

    return {k: convert(v) for k, v in case.params.items()}


def call(fn, case: Case, inputs, params: dict):
    n = len(case.args)
    return fn(*inputs[:n], **dict(zip(case.kwargs, inputs[n:])), **params)


def as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def cotangents(shapes) -> list:
    """The fixed upstream gradients (float64) every run uses, one per float output."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in shapes]


@dataclass
class Run:
    """A forward and backward, as NumPy arrays: the outputs, the gradients of the float
    inputs, and the host transfers the device counted meanwhile."""

    outputs: list
    grads: list
    transfers: int = 0


def run_minigrad(fn, case: Case, device="cpu", dtype="float64") -> Run:
    """fn on the case's inputs, then a backward seeded with `cotangents`; checks that
    neither writes into arrays it does not own and that gradients keep the inputs' dtype."""
    dev = mg.get_device(device)
    inputs = minigrad_inputs(case, device, dtype)
    before = dev.host_transfers
    outputs = as_tuple(call(fn, case, inputs, minigrad_params(case, device, dtype)))
    floats = [o for o in outputs if o.requires_grad]
    upstream = [mg.tensor(u, dtype=o.dtype, device=device)
                for o, u in zip(floats, cotangents(o.shape for o in floats))]
    if len(outputs) == 1 and floats:  # the op's own backward, seeded explicitly
        outputs[0].backward(upstream[0])
    elif floats:
        sum((o * u).sum() for o, u in zip(floats, upstream)).backward()
    transfers = dev.host_transfers - before
    for i, (t, a) in enumerate(zip(inputs, case.inputs)):
        np.testing.assert_array_equal(t.numpy(), a.astype(t.numpy().dtype),
                                      err_msg=f"input {i} was modified")
    for u, want in zip(upstream, cotangents(o.shape for o in floats)):
        np.testing.assert_array_equal(u.numpy(), want.astype(u.numpy().dtype),
                                      err_msg="the upstream gradient was modified")
    leaves = [t for t in inputs if t.requires_grad]
    grads = [t.grad for t in leaves]
    assert all(g is not None for g in grads), "an input got no gradient"
    assert all(t.device is dev for t in [*outputs, *grads]), "a result left the device"
    assert all(g.dtype == t.dtype for g, t in zip(grads, leaves)), "a gradient changed dtype"
    return Run([o.numpy() for o in outputs], [g.numpy() for g in grads],
               transfers)


def run_torch(spec: OpSpec, case: Case, dtype="float64") -> Run:
    """The same run of spec's PyTorch twin (imports torch: call only where it is installed)."""
    import torch

    def convert(a, differentiable):
        if is_float(a):
            return torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=differentiable)
        return torch.from_numpy(a)

    def convert_param(v):
        if isinstance(v, np.ndarray):
            return convert(v, False)
        if isinstance(v, Placeholder):
            return "cpu" if v.what == "device" else getattr(torch, dtype)
        return tuple(convert_param(x) for x in v) if isinstance(v, tuple) else v

    inputs = [convert(a, True) for a in case.inputs]
    params = {k: convert_param(v) for k, v in case.params.items()}
    outputs = as_tuple(call(spec.torch_fn(torch), case, inputs, params))
    floats = [o for o in outputs if o.requires_grad]
    if floats:
        torch.autograd.backward(floats, [torch.tensor(u, dtype=o.dtype) for o, u in zip(
            floats, cotangents(tuple(o.shape) for o in floats))])
    return Run([o.detach().numpy() for o in outputs],
               [t.grad.numpy() for t in inputs if t.requires_grad])


def assert_runs_close(ours: Run, theirs: Run, what: str, rtol: float, atol: float) -> None:
    """Same number, shapes and dtypes of outputs and gradients, and close values."""
    for kind, got, want in [("output", ours.outputs, theirs.outputs),
                            ("gradient of input", ours.grads, theirs.grads)]:
        assert len(got) == len(want), f"{what}: {len(got)} {kind}s, expected {len(want)}"
        for k, (a, b) in enumerate(zip(got, want)):
            label = f"{what}: {kind} {k}"
            assert a.shape == b.shape, f"{label}: shape {a.shape}, expected {b.shape}"
            assert a.dtype == b.dtype, f"{label}: dtype {a.dtype}, expected {b.dtype}"
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=label)


# -- case strategies: primitive ops --------------------------------------------------------
@st.composite
def elementwise(draw, n: int = 1, min_side: int = 0, kinds: str = "", min_dims: int = 0,
                max_dims: int = 3, **params):
    """n mutually broadcastable inputs (0-d, size-1 and empty axes included); kinds gives
    each input's kind, 'f' float (the default) or 'b' bool; params are strategies."""
    shapes = draw(mt.broadcastable_shapes(n, min_dims=min_dims, max_dims=max_dims,
                                          min_side=min_side))
    args = tuple(draw(mt.arrays(s, dtype=bool)) if kinds and kinds[i] == "b" else s
                 for i, s in enumerate(shapes))
    return Case(args, params={k: draw(v) for k, v in params.items()})


def axes_for(ndim: int) -> st.SearchStrategy:
    """None, an int (negative too) or a tuple of distinct axes; 0 / -1 on 0-d tensors."""
    if ndim == 0:
        return st.sampled_from([None, 0, -1])
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                              unique=True).map(tuple))


@st.composite
def reductions(draw, min_side: int = 0, correction: bool = False, **extra):
    shape = draw(mt.shapes(min_side=min_side))
    axis = draw(axes_for(len(shape)))
    params = {"axis": axis, "keepdims": draw(st.booleans()),
              **{k: draw(v) for k, v in extra.items()}}
    if correction:
        axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
        count = math.prod(shape[a] for a in axes) if shape else 1
        params["correction"] = draw(st.sampled_from([0, 1])) if count > 1 else 0
    return Case((shape,), params=params)


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
    return Case((shape,), params={"shape": draw(st.sampled_from(targets))})


@st.composite
def permutations(draw):
    shape = draw(mt.shapes(min_side=0))
    ndim = len(shape)
    if draw(st.booleans()):
        return Case((shape,), params={"axes": tuple(range(ndim - 1, -1, -1))})
    order = draw(st.permutations(range(ndim)))
    negate = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    axes = tuple(a - ndim if n else a for a, n in zip(order, negate))
    return Case((shape,), params={"axes": axes})


@st.composite
def swaps(draw):
    shape = draw(mt.shapes(min_dims=1))
    ndim = len(shape)
    dim = st.integers(-ndim, ndim - 1)
    return Case((shape,), params={"dim0": draw(dim), "dim1": draw(dim)})


@st.composite
def squeezes(draw):
    """None, or dims of size 1 and of other sizes (which PyTorch leaves alone)."""
    shape = draw(mt.shapes(max_side=2))
    choices = [st.none()]
    if shape:
        dims = list(range(len(shape)))
        choices += [st.sampled_from(dims),
                    st.lists(st.sampled_from(dims), min_size=1, unique=True).map(tuple)]
    return Case((shape,), params={"axis": draw(st.one_of(choices))})


@st.composite
def unsqueezes(draw):
    shape = draw(mt.shapes())
    ndim = len(shape) + 1
    return Case((shape,), params={"axis": draw(st.integers(-ndim, ndim - 1))})


@st.composite
def broadcasts(draw):
    shape = draw(mt.shapes(max_dims=2))
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(0, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                          for n in shape)
    return Case((shape,), params={"shape": target})


@st.composite
def triangles(draw):
    """Matrices and batches of them (empty too); diagonals inside and beyond the matrix."""
    shape = draw(mt.shapes(min_dims=2, max_dims=4, min_side=0, max_side=4))
    return Case((shape,), params={"diagonal": draw(st.integers(-4, 4))})


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
    return Case((shape,), params={"key": tuple(parts)})


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
    return Case((shape,), params={"key": key})


@st.composite
def mask_keys(draw):
    shape = draw(mt.shapes(min_dims=1))
    lead = draw(st.integers(1, len(shape)))
    mask = draw(mt.arrays(shape[:lead], dtype=bool))
    return Case((shape,), params={"key": (mask,)})


@st.composite
def joins(draw, stack: bool = False):
    n = draw(st.integers(1, 3))
    shape = draw(mt.shapes(min_dims=0 if stack else 1, min_side=0))
    ndim = len(shape) + stack
    axis = draw(st.integers(-ndim, ndim - 1))
    if stack:
        return Case((shape,) * n, params={"axis": axis})
    lengths = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    shapes = tuple(shape[:axis % ndim] + (k,) + shape[axis % ndim + 1:] for k in lengths)
    return Case(shapes, params={"axis": axis})


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
    return Case((shape,), params={"sections": sections, "axis": axis})


@st.composite
def masked_fills(draw):
    shape = draw(mt.shapes(min_side=0))
    mask_shape = tuple(draw(st.sampled_from([n, 1])) for n in shape)
    mask_shape = mask_shape[draw(st.integers(0, len(shape))):]
    mask = draw(mt.arrays(mask_shape, dtype=bool))
    return Case((shape, mask), params={"value": draw(st.sampled_from([0.0, -1.5, 7.0]))})


@st.composite
def matmuls(draw):
    """The 1-D cases (vector @ vector, vector @ matrix, matrix @ vector) and batched
    matrices whose batch dims broadcast."""
    k = draw(st.integers(1, 3))
    batch_a, batch_b = draw(mt.broadcastable_shapes(2, max_dims=2))
    a = draw(st.sampled_from([(k,), (*batch_a, draw(st.integers(1, 3)), k)]))
    b = draw(st.sampled_from([(k,), (*batch_b, k, draw(st.integers(1, 3)))]))
    return Case((a, b))


@st.composite
def one_dim(draw, min_side: int = 0, **params):
    """One input with at least one dim and an int `dim` of it; params are strategies."""
    shape = draw(mt.shapes(min_dims=1, min_side=min_side))
    return Case((shape,), params={"dim": draw(st.integers(-len(shape), len(shape) - 1)),
                                  **{k: draw(v) for k, v in params.items()}})


@st.composite
def constant_input(draw, min_side: int = 1, distinct: bool = True, **params):
    """A float array given as the parameter x (not differentiated: for ops whose result
    has no gradient, argmin, argsort), with an int dim and params drawn from strategies."""
    shape = draw(mt.shapes(min_dims=1, min_side=min_side))
    x = values_rng(draw).permutation(math.prod(shape)).reshape(shape) * 0.5 if distinct else (
        values_rng(draw).integers(0, 3, shape) * 1.0)
    return Case(params={"x": x, "dim": draw(st.integers(-len(shape), len(shape) - 1)),
                        **{k: draw(v) for k, v in params.items()}})


@st.composite
def top_ks(draw):
    shape = draw(mt.shapes(min_dims=1, min_side=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return Case((shape,), params={"k": draw(st.integers(0, shape[dim])), "dim": dim,
                                  "largest": draw(st.booleans())})


@st.composite
def along_dim(draw, scatter: bool = False, broadcast: bool = False):
    """An input, a dim and an integer index of the input's rank, no larger outside dim
    (repeats likely; `broadcast`: there of size 1 or the input's, for take_along_dim);
    for scatter_add also a src shaped like the index."""
    shape = draw(mt.shapes(min_dims=1, min_side=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    other = (lambda n: st.sampled_from([1, n])) if broadcast else (lambda n: st.integers(1, n))
    index_shape = tuple(draw(st.integers(0, 3)) if d == dim % len(shape) else
                        draw(other(n)) for d, n in enumerate(shape))
    index = values_rng(draw).integers(0, shape[dim], index_shape)
    if scatter:
        return Case((shape, index, index_shape), params={"dim": dim})
    return Case((shape, index), params={"dim": dim})


@st.composite
def index_selects(draw, add: bool = False):
    shape = draw(mt.shapes(min_dims=1, min_side=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index = values_rng(draw).integers(0, shape[dim], draw(st.integers(0, 4)))
    if not add:
        return Case((shape, index), params={"dim": dim})
    source = shape[:dim % len(shape)] + (index.shape[0],) + shape[dim % len(shape) + 1:]
    return Case((shape, index, source), params={"dim": dim,
                                                 "alpha": draw(st.sampled_from([1, -2.5]))})


@st.composite
def repeats(draw):
    shape = draw(mt.shapes(max_dims=2))
    extra = draw(st.integers(0 if shape else 1, 1))  # torch's repeat needs one size
    return Case((shape,), params={"sizes": tuple(draw(st.integers(0, 2))
                                                 for _ in range(len(shape) + extra))})


@st.composite
def rolls(draw):
    shape = draw(mt.shapes(min_dims=1, min_side=0))
    if draw(st.booleans()):
        return Case((shape,), params={"shifts": draw(st.integers(-4, 4)), "dims": None})
    dims = tuple(draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=2,
                               unique=True)))
    shifts = tuple(draw(st.integers(-4, 4)) for _ in dims)
    return Case((shape,), params={"shifts": shifts, "dims": dims})


# The contractions of attention and linear layers, an outer product, a full contraction,
# batch broadcasting, a permutation.
EINSUMS = [("bhqd,bhkd->bhqk", (2, 3, 4, 2), (2, 3, 5, 2)),
           ("bhqk,bhkd->bhqd", (1, 2, 3, 4), (1, 2, 4, 2)), ("bij,jk->bik", (2, 3, 4), (4, 2)),
           ("i,j->ij", (3,), (2,)), ("ij,ij->", (2, 3), (2, 3)), ("bi,bi->b", (1, 3), (4, 3)),
           ("ij->ji", (2, 3)), ("btc,c->bt", (2, 3, 4), (4,))]


@st.composite
def einsums(draw):
    equation, *shapes = draw(st.sampled_from(EINSUMS))
    return Case(tuple(shapes), params={"equation": equation})


@st.composite
def narrows(draw):
    shape = draw(mt.shapes(min_dims=1, min_side=0))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    start = draw(st.integers(0, n))
    return Case((shape,), params={"dim": dim, "start": start,
                                  "length": draw(st.integers(0, n - start))})


@st.composite
def unflattens(draw):
    shape = draw(mt.shapes(min_dims=1, max_side=4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    split = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    sizes = draw(st.sampled_from([(split, n // split), (-1, split), (n,)]))
    return Case((shape,), params={"dim": dim, "sizes": sizes})


@st.composite
def pads(draw):
    shape = draw(mt.shapes(min_dims=1, min_side=0))
    pairs = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs))
    return Case((shape,), params={"pad": pad, "value": draw(st.sampled_from([0.0, -1.5]))})


@st.composite
def same_shapes(draw, n: int = 2, **params):
    shape = draw(mt.shapes())
    return Case((shape,) * n, params={k: draw(v) for k, v in params.items()})


@st.composite
def probabilities(draw, logits: bool = False, kl: bool = False):
    """input and target for binary_cross_entropy(_with_logits) / kl_div; the target (a
    constant, as PyTorch has no gradient for it in the binary losses) in params."""
    rng = values_rng(draw)
    shape = sizes(draw, 0, 2)
    params = {"reduction": draw(st.sampled_from(["mean", "sum", "none"]
                                                + (["batchmean"] if kl else [])))}
    if kl:
        p = rng.random(shape + (3,)) + 0.1
        params["log_target"] = draw(st.booleans())
        target = p / p.sum(axis=-1, keepdims=True)
        params["target"] = np.log(target) if params["log_target"] else target
        return Case((rng.standard_normal(shape + (3,)),), params=params)
    params["target"] = np.asarray(rng.random(shape))
    if draw(st.booleans()):
        params["weight"] = np.asarray(rng.random(shape) + 0.5)
    x = rng.standard_normal(shape) * 2 if logits else rng.random(shape) * 0.9 + 0.05
    return Case((np.asarray(x),), params=params)


@st.composite
def nll_losses(draw):
    rng = values_rng(draw)
    n_classes, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    extra = draw(st.sampled_from([(), (2,)]))
    params = {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
    if draw(st.booleans()):
        params["weight"] = rng.random(n_classes) + 0.5
    targets = rng.integers(0, n_classes, (n,) + extra)
    return Case((rng.standard_normal((n, n_classes) + extra), targets), params=params)


@st.composite
def normalizes(draw):
    x = values_rng(draw).standard_normal(sizes(draw, 1, 3)) + 0.5
    return Case((x,), params={"p": draw(st.sampled_from([1.0, 2.0, 3.0])),
                              "dim": draw(st.integers(-x.ndim, x.ndim - 1))})


@st.composite
def multinomials(draw):
    rng = values_rng(draw)
    shape = sizes(draw, 1, 2, 1, 5)
    p = rng.random(shape) * (rng.random(shape) < 0.8) + 1e-3
    replacement = draw(st.booleans())
    k = draw(st.integers(0, 6 if replacement else shape[-1]))
    return Case(params={"probs": p, "num_samples": k, "replacement": replacement,
                        "generator": Seed(draw(st.integers(0, 1000)))})


@st.composite
def creations(draw, kind: str):
    if kind == "eye":
        return Case(params={"n": draw(st.integers(0, 3)),
                            "m": draw(st.sampled_from([None, 0, 2])),
                            "dtype": DTYPE, "device": DEVICE})
    if kind == "linspace":
        return Case(params={"start": draw(st.sampled_from([-1.0, 0.0])),
                            "end": draw(st.sampled_from([1.0, 2.5])),
                            "steps": draw(st.integers(0, 4)), "dtype": DTYPE, "device": DEVICE})
    shape = draw(mt.shapes(min_side=0))
    if kind == "empty":
        return Case(params={"shape": shape, "dtype": DTYPE, "device": DEVICE})
    return Case(params={"x": values_rng(draw).standard_normal(shape),
                        "value": draw(st.sampled_from([0.0, 2.5]))})


# -- case strategies: fused ops ------------------------------------------------------------
# Float values come from a drawn seed: hypothesis would shrink them towards equal values,
# where a normalization is ill-conditioned and finite differences meaningless.
def sizes(draw, min_dims, max_dims, low=1, high=4) -> tuple:
    n = draw(st.integers(min_dims, max_dims))
    return tuple(draw(st.integers(low, high)) for _ in range(n))


def values_rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


@st.composite
def softmaxes(draw):
    """Rows of random values; sometimes the softmax axis is empty (an empty result)."""
    shape = list(sizes(draw, 1, 4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    if draw(st.integers(0, 5)) == 0:
        shape[axis] = 0
    x = values_rng(draw).standard_normal(tuple(shape)) * 3
    return Case((x,), params={"axis": axis})


@st.composite
def cross_entropies(draw):
    """PyTorch's layouts: logits (C,), (N, C) or (N, C, d1, ...) with class indices (some
    ignored), or with class probabilities; with or without class weights."""
    rng = values_rng(draw)
    n_classes = draw(st.integers(1, 6))
    batch = draw(st.sampled_from([(), (draw(st.integers(1, 3)),),
                                  (draw(st.integers(1, 3)), draw(st.integers(1, 3)))]))
    lead = batch  # the targets' shape: (), (N,) or (N, d1)
    shape = (n_classes,) if not lead else (lead[0], n_classes) + lead[1:]
    params = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])),
              "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.6]))}
    if draw(st.booleans()):
        params["weight"] = rng.random(n_classes) + 0.5
    logits = rng.standard_normal(shape) * 2
    if draw(st.integers(0, 3)) == 0:  # probabilities (differentiated too)
        p = rng.random(shape) + 0.1
        return Case((logits, p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)),
                    params=params)
    ignore_index = draw(st.sampled_from([-100, 0]))
    targets = rng.integers(0, n_classes, lead)
    ignored = rng.random(lead) < draw(st.sampled_from([0.0, 0.3]))
    targets = np.where(ignored, ignore_index, targets).reshape(lead)
    if targets.size and ignore_index == -100:
        targets.reshape(-1)[0] = n_classes - 1  # at least one target counts
    params["ignore_index"] = ignore_index
    if ignore_index == 0 and params["reduction"] == "mean":
        params["ignore_index"] = -100  # class 0 may be every target: keep the mean finite
    return Case((logits, targets), params=params)


@st.composite
def norms(draw, with_bias: bool):
    rng = values_rng(draw)
    shape = sizes(draw, 1, 2, 2, 5)
    if draw(st.integers(0, 7)) == 0:
        shape = shape[:-1] + (0,)  # nothing to normalise: an empty result
    kwargs = {}
    if draw(st.booleans()):
        kwargs["weight"] = rng.standard_normal(shape)
    if with_bias and draw(st.booleans()):
        kwargs["bias"] = rng.standard_normal(shape)
    x = rng.standard_normal(sizes(draw, 0, 2) + shape) * 2 + 0.5
    return Case((x,), kwargs, {"normalized_shape": shape,
                               "eps": draw(st.sampled_from([1e-5, 0.1]))})


@st.composite
def linears(draw):
    rng = values_rng(draw)
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x, weight = rng.standard_normal(sizes(draw, 0, 2) + (n_in,)), rng.standard_normal((n_out, n_in))
    kwargs = {"bias": rng.standard_normal(n_out)} if draw(st.booleans()) else {}
    return Case((x, weight), kwargs)


@st.composite
def embeddings(draw, padding: bool = False):
    rng = values_rng(draw)
    vocab, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    ids = rng.integers(0, vocab, sizes(draw, 0, 2))  # repeats are likely
    params = {"padding_idx": draw(st.sampled_from([0, -1]))} if padding else {}
    return Case((ids, rng.standard_normal((vocab, dim))), params=params)


@st.composite
def dropouts(draw):
    x = values_rng(draw).standard_normal(sizes(draw, 1, 3))
    return Case((x,), params={"p": draw(st.sampled_from([0.1, 0.5, 0.9])),
                              "generator": Seed(draw(st.integers(0, 1000)))})


@st.composite
def attentions(draw, dropout: bool = False):
    rng = values_rng(draw)
    lead = sizes(draw, 1, 2, 1, 3)
    tq, tk = draw(st.integers(1, 5)), draw(st.integers(0, 5))  # tk = 0: no keys, zeros out
    d, dv = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    args = (rng.standard_normal(lead + (tq, d)), rng.standard_normal(lead + (tk, d)),
            rng.standard_normal(lead + (tk, dv)))
    kwargs, params = {}, {"is_causal": draw(st.booleans()) and tk > 0,
                          "scale": draw(st.sampled_from([None, 0.7]))}
    kind = draw(st.sampled_from(["none", "bool", "additive"])) if tk else "none"
    if kind != "none":
        full = lead + (tq, tk)
        shape = tuple(n if draw(st.booleans()) else 1 for n in full)
        shape = shape[draw(st.integers(0, len(shape) - 2)):]  # fewer leading dims too
        if kind == "bool":
            mask = rng.random(shape) < 0.7
            mask[..., 0] = True  # every query sees key 0 (the composite gives nan otherwise)
            params["attn_mask"] = mask
        else:
            kwargs["attn_mask"] = rng.standard_normal(shape)  # differentiated as well
    if dropout:
        params.update(dropout_p=draw(st.sampled_from([0.2, 0.5])),
                      generator=Seed(draw(st.integers(0, 1000))))
    return Case(args, kwargs, params)


# -- PyTorch twins that need more than a name (the torch module comes first) ---------------
def torch_getitem(torch, x, key):
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


def torch_squeeze(torch, x, axis):
    return x.squeeze() if axis is None else x.squeeze(axis)


def torch_transpose(torch, x, axes):
    return x.permute(tuple(axes if axes is not None else reversed(range(x.ndim))))


def torch_reduction(name: str) -> Callable:
    """torch.<name>(x, dim, keepdim) for minigrad's (x, axis, keepdims)."""
    def twin(torch, x, axis, keepdims, **params):
        return getattr(torch, name)(x, dims(axis, x.ndim), keepdim=keepdims, **params)

    return twin


def torch_attention(torch, q, k, v, attn_mask=None, is_causal=False, scale=None):
    if attn_mask is not None and is_causal:  # PyTorch takes one or the other: merge them
        visible = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        attn_mask = (attn_mask & visible if attn_mask.dtype == torch.bool
                     else torch.where(visible, attn_mask, float("-inf")))
        is_causal = False
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                                            is_causal=is_causal, scale=scale)


def torch_prod(torch, x, axis, keepdims):
    """torch.prod takes one dim: reduce the dims one after another (keeping them)."""
    for d in dims(axis, x.ndim) if not isinstance(axis, int) else (axis,):
        x = torch.prod(x, d, keepdim=True)
    if keepdims:
        return x
    kept = (axis,) if isinstance(axis, int) else dims(axis, x.ndim)
    return x.reshape([n for i, n in enumerate(x.shape) if i not in {d % max(x.ndim, 1)
                                                                     for d in kept}])


def _resolved(case: Case) -> tuple:
    """The shape a reshape case asks for, with its -1 worked out."""
    shape, size = case.params["shape"], math.prod(case.args[0])
    known = math.prod(n for n in shape if n != -1)
    return tuple(size // known if n == -1 else n for n in shape)


def _expanded(case: Case) -> tuple:
    shape, target = case.args[0], case.params["shape"]
    lead = len(target) - len(shape)
    return tuple(shape[i - lead] if n == -1 else n for i, n in enumerate(target))


def _maybe_flat(case: Case) -> Case:
    """repeat_interleave over one dim, or (dim None) the flattened input."""
    if case.params["dim"] == 0:
        return replace(case, params={**case.params, "dim": None})
    return case


def _even_dim(case: Case) -> Case:
    shape = list(case.args[0])
    shape[case.params["dim"]] *= 2
    return replace(case, args=(tuple(shape),))


@st.composite
def constant_ids(draw):
    n = draw(st.integers(1, 4))
    ids = values_rng(draw).integers(0, n, sizes(draw, 0, 2, 0, 3))
    return Case(params={"ids": ids, "num_classes": draw(st.sampled_from([n, n + 2]))})


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
    OpSpec("maximum", mg.maximum, elementwise(2), "maximum", mt.safe_domain("maximum")),
    OpSpec("minimum", mg.minimum, elementwise(2), "minimum", mt.safe_domain("minimum")),
    OpSpec("maximum_scalar", lambda x: mg.maximum(x, 0.5), elementwise(),
           lambda torch, x: torch.maximum(x, torch.tensor(0.5, dtype=x.dtype)),
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
    # elementwise math and activations (functional and method forms)
    OpSpec("mul_numpy_scalar", _reflected(lambda a, b: a * b),
           _scalar_cases([np.float64(0.5), np.float32(-2.0), np.int64(3)]),
           lambda torch, x, c, reflected: x * c.item()),
    OpSpec("pow_method", lambda x, c: x.pow(c), elementwise(c=st.sampled_from([2, 0.5])),
           domain=mt.safe_domain("pow")),
    OpSpec("maximum_method", lambda a, b: a.maximum(b), elementwise(2), None,
           mt.safe_domain("maximum")),
    OpSpec("neg", lambda x: -x, elementwise()),
    OpSpec("rsqrt", mg.rsqrt, elementwise(), "rsqrt", mt.safe_domain("sqrt")),
    OpSpec("square", lambda x: x.square(), elementwise()),
    OpSpec("log1p", mg.log1p, elementwise(), "log1p", mt.positive(-0.8, 3.0)),
    OpSpec("expm1", mg.expm1, elementwise(), "expm1", mt.safe_domain("exp")),
    OpSpec("sign", mg.sign, elementwise(), "sign", mt.away_from(0.0)),
    OpSpec("softplus", mg.softplus,
           elementwise(beta=st.sampled_from([1.0, 2.0]), threshold=st.sampled_from([20.0, 1.0])),
           "nn.functional.softplus", mt.away_from(0.5)),
    OpSpec("leaky_relu", F.leaky_relu, elementwise(negative_slope=st.sampled_from([0.01, 0.3])),
           "nn.functional.leaky_relu", mt.away_from(0.0)),
    OpSpec("elu", F.elu, elementwise(alpha=st.sampled_from([1.0, 0.5])), "nn.functional.elu",
           mt.away_from(0.0)),
    OpSpec("logsigmoid", F.logsigmoid, elementwise(), "nn.functional.logsigmoid"),
    OpSpec("glu", F.glu, one_dim(min_side=1).map(_even_dim), "nn.functional.glu"),
    OpSpec("exp", mg.exp, elementwise(), "exp", mt.safe_domain("exp")),
    OpSpec("log", mg.log, elementwise(), "log", mt.safe_domain("log")),
    OpSpec("sqrt", mg.sqrt, elementwise(), "sqrt", mt.safe_domain("sqrt")),
    OpSpec("sin", mg.sin, elementwise(), "sin"),
    OpSpec("cos", lambda x: x.cos(), elementwise()),
    OpSpec("abs", mg.abs, elementwise(), "abs", mt.safe_domain("abs")),
    OpSpec("tanh", mg.tanh, elementwise(), "tanh"),
    OpSpec("sigmoid", mg.sigmoid, elementwise(), "sigmoid"),
    OpSpec("relu", mg.relu, elementwise(), "relu", mt.safe_domain("relu")),
    OpSpec("erf", mg.erf, elementwise(), "erf"),
    OpSpec("silu", mg.silu, elementwise(), "nn.functional.silu"),
    OpSpec("clip", lambda x, low, high: x.clip(low, high),
           elementwise(low=st.sampled_from([-1.0, None]), high=st.sampled_from([1.0, None]))
           .filter(lambda c: c.params["low"] is not None or c.params["high"] is not None),
           lambda torch, x, low, high: torch.clamp(x, low, high), mt.away_from(-1.0, 1.0)),
    # reductions
    OpSpec("sum", mg.sum, reductions(), torch_reduction("sum")),
    OpSpec("mean", mg.mean, reductions(min_side=1), torch_reduction("mean")),
    OpSpec("amax", mg.amax, reductions(min_side=1), torch_reduction("amax"),
           mt.safe_domain("max")),
    OpSpec("amin", lambda x, axis, keepdims: x.amin(dim=axis, keepdim=keepdims),
           reductions(min_side=1), torch_reduction("amin"), mt.safe_domain("min")),
    OpSpec("max_dim", lambda x, dim, keepdim: x.max(dim, keepdim),
           one_dim(min_side=1, keepdim=st.booleans()), None, mt.safe_domain("max")),
    OpSpec("min_dim", mg.min, one_dim(min_side=1, keepdim=st.booleans()), "min",
           mt.safe_domain("min")),
    OpSpec("max_all", lambda x: x.max(), elementwise(min_side=1), None, mt.safe_domain("max")),
    # (away from 0: dividing the product by a subnormal element loses float32 precision;
    # zeros are tested in test_ops_regressions.py)
    OpSpec("prod", mg.prod, reductions(), torch_prod, mt.away_from(0.0)),
    OpSpec("var", mg.var, reductions(min_side=1, correction=True), torch_reduction("var")),
    OpSpec("var_default", lambda x: x.var(), elementwise(min_side=2, min_dims=1), None),
    OpSpec("std", mg.std, reductions(min_side=2, correction=True)
           .filter(lambda c: c.args[0] != ()), torch_reduction("std"), mt.distinct()),
    OpSpec("norm", lambda x, axis, keepdims, p: x.norm(p, axis, keepdims),
           reductions(min_side=1, p=st.sampled_from([1, 2, 3, math.inf])),
           lambda torch, x, axis, keepdims, p: torch.linalg.vector_norm(
               x, p, dims(axis, x.ndim), keepdims),
           mt.Domain(kinks=(0.0,), margin=0.05, distinct=True)),
    OpSpec("logsumexp", mg.logsumexp, reductions(min_side=1), torch_reduction("logsumexp")),
    OpSpec("cumsum", mg.cumsum, one_dim(), "cumsum"),
    OpSpec("argmax", lambda x, dim, keepdim: x.argmax(dim, keepdim),
           constant_input(keepdim=st.booleans()), None, finite_differences=False),
    OpSpec("argmin", lambda x, dim, keepdim: mg.argmin(x, dim, keepdim),
           constant_input(keepdim=st.booleans()),
           lambda torch, x, dim, keepdim: torch.argmin(x, dim, keepdim), finite_differences=False),
    OpSpec("argmin_all", lambda x, dim: mg.argmin(x), constant_input(),
           lambda torch, x, dim: torch.argmin(x), finite_differences=False),
    # sorting
    OpSpec("sort", lambda x, dim, descending: x.sort(dim, descending),
           one_dim(descending=st.booleans()), None, mt.distinct()),
    OpSpec("argsort", lambda x, dim, descending: mg.argsort(x, dim, descending),
           constant_input(descending=st.booleans()),
           lambda torch, x, dim, descending: torch.argsort(x, dim=dim, descending=descending),
           finite_differences=False),
    OpSpec("topk", mg.topk, top_ks(), "topk", mt.distinct()),
    # shapes
    OpSpec("reshape", mg.reshape, reshapes(), "reshape"),
    OpSpec("permute", lambda x, axes: mg.permute(x, axes), permutations(), torch_transpose),
    OpSpec("transpose", mg.transpose, swaps(), "transpose"),
    OpSpec("swapaxes", lambda x, dim0, dim1: x.swapaxes(dim0, dim1), swaps()),
    OpSpec("T", lambda x: x.T, elementwise(max_dims=2)),
    OpSpec("mT", lambda x: x.mT, elementwise(min_dims=2)),
    OpSpec("squeeze", lambda x, axis: x.squeeze(axis), squeezes(), torch_squeeze),
    OpSpec("flatten", lambda x, start_dim: x.flatten(start_dim), one_dim().map(
        lambda c: replace(c, params={"start_dim": c.params["dim"]}))),
    OpSpec("unflatten", mg.unflatten, unflattens(), "unflatten"),
    OpSpec("view_as", lambda x, other: x.view_as(other), reshapes().map(
        lambda c: replace(c, params={"other": np.zeros(_resolved(c))}))),
    OpSpec("expand_as", lambda x, other: x.expand_as(other), broadcasts().map(
        lambda c: replace(c, params={"other": np.zeros(_expanded(c))}))),
    OpSpec("repeat", lambda x, sizes: x.repeat(*sizes), repeats()),
    OpSpec("tile", lambda x, sizes: mg.tile(x, sizes), repeats(),
           lambda torch, x, sizes: torch.tile(x, sizes)),
    OpSpec("repeat_interleave", mg.repeat_interleave,
           one_dim(repeats=st.integers(0, 3)).map(_maybe_flat), "repeat_interleave"),
    OpSpec("flip", lambda x, dims: x.flip(dims), one_dim().map(
        lambda c: replace(c, params={"dims": (c.params["dim"],)}))),
    OpSpec("roll", mg.roll, rolls(), "roll"),
    OpSpec("clone", lambda x: x.clone(), elementwise()),
    OpSpec("unsqueeze", lambda x, axis: mg.unsqueeze(x, axis), unsqueezes(),
           lambda torch, x, axis: torch.unsqueeze(x, axis)),
    OpSpec("broadcast_to", mg.broadcast_to, broadcasts(),
           lambda torch, x, shape: x.expand(shape)),
    # triangular parts (functional and method forms)
    OpSpec("tril", mg.tril, triangles(), "tril"),
    OpSpec("triu", lambda x, diagonal: x.triu(diagonal), triangles()),
    # indexing
    OpSpec("getitem", lambda x, key: x[key], basic_keys(), torch_getitem),
    OpSpec("getitem_int_arrays", lambda x, key: x[key], integer_array_keys()),
    OpSpec("getitem_bool_mask", lambda x, key: x[key], mask_keys()),
    OpSpec("where", mg.where, elementwise(3, kinds="bff"), "where"),
    OpSpec("where_scalar", lambda c, x: mg.where(c, x, 0.5), elementwise(2, kinds="bf"),
           lambda torch, c, x: torch.where(c, x, 0.5)),
    OpSpec("masked_fill", lambda x, m, value: x.masked_fill(m, value), masked_fills()),
    OpSpec("where_method", lambda c, x, y: x.where(c, y), elementwise(3, kinds="bff")),
    OpSpec("gather", lambda x, index, dim: mg.gather(x, dim, index), along_dim(),
           lambda torch, x, index, dim: torch.gather(x, dim, index)),
    OpSpec("take_along_dim", mg.take_along_dim, along_dim(broadcast=True),
           lambda torch, x, index, dim: torch.take_along_dim(x, index, dim)),
    OpSpec("index_select", lambda x, index, dim: mg.index_select(x, dim, index),
           index_selects(),
           lambda torch, x, index, dim: torch.index_select(x, dim, index)),
    OpSpec("scatter_add", lambda a, index, src, dim: a.scatter_add(dim, index, src),
           along_dim(scatter=True)),
    OpSpec("index_add", lambda a, index, source, dim, alpha: a.index_add(dim, index, source,
                                                                       alpha=alpha),
           index_selects(add=True)),
    OpSpec("narrow", lambda x, dim, start, length: x.narrow(dim, start, length), narrows()),
    OpSpec("one_hot", lambda ids, num_classes: F.one_hot(ids, num_classes), constant_ids(),
           lambda torch, ids, num_classes: torch.nn.functional.one_hot(ids, num_classes),
           finite_differences=False),
    # joining and splitting
    OpSpec("concatenate", lambda *xs, axis: mg.concatenate(xs, axis), joins(),
           lambda torch, *xs, axis: torch.cat(xs, axis)),
    OpSpec("stack", lambda *xs, axis: mg.stack(xs, axis), joins(stack=True),
           lambda torch, *xs, axis: torch.stack(xs, axis)),
    OpSpec("split", lambda x, sections, axis: x.split(sections, axis), splits(),
           lambda torch, x, sections, axis: torch.split(x, sections, dim=axis)),
    OpSpec("chunk", lambda x, dim, chunks: x.chunk(chunks, dim),
           one_dim(chunks=st.integers(1, 4))),
    # matmul and its relatives
    OpSpec("matmul", lambda a, b: a @ b, matmuls()),
    OpSpec("outer", mg.outer, elementwise(2, min_dims=1, max_dims=1), "outer"),
    OpSpec("einsum", lambda *xs, equation: mg.einsum(equation, *xs), einsums(),
           lambda torch, *xs, equation: torch.einsum(equation, *xs)),
    # conversions and creation (no float input to differentiate)
    OpSpec("type_as", lambda x, other: x.type_as(other), constant_input().map(
        lambda c: replace(c, params={"x": c.params["x"], "other": np.zeros(2, np.int64)})),
           finite_differences=False),
    OpSpec("eye", mg.eye, creations("eye"),
           lambda torch, n, m, dtype, device: torch.eye(n, n if m is None else m, dtype=dtype,
                                                        device=device), finite_differences=False),
    OpSpec("linspace", mg.linspace, creations("linspace"), "linspace", finite_differences=False),
    OpSpec("empty", lambda shape, dtype, device: mg.full_like(
        mg.empty(shape, dtype=dtype, device=device), 1.0), creations("empty"),
           lambda torch, shape, dtype, device: torch.full_like(
               torch.empty(shape, dtype=dtype, device=device), 1.0), finite_differences=False),
    OpSpec("full_like", lambda x, value: mg.full_like(x, value), creations("full_like"),
           lambda torch, x, value: torch.full_like(x, value), finite_differences=False),
    OpSpec("multinomial", mg.multinomial, multinomials(), False, finite_differences=False),
    # the smaller functional ops and losses of minigrad.nn.functional
    OpSpec("pad", F.pad, pads(), "nn.functional.pad"),
    OpSpec("normalize", F.normalize, normalizes(), "nn.functional.normalize",
           tolerances=FUSED_TOLERANCES),  # a difference of nearly equal terms in float32
    OpSpec("mse_loss", F.mse_loss, same_shapes(reduction=st.sampled_from(["mean", "sum", "none"])),
           "nn.functional.mse_loss"),
    OpSpec("nll_loss", F.nll_loss, nll_losses(), "nn.functional.nll_loss"),
    OpSpec("binary_cross_entropy", F.binary_cross_entropy, probabilities(),
           "nn.functional.binary_cross_entropy"),
    OpSpec("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
           probabilities(logits=True), "nn.functional.binary_cross_entropy_with_logits"),
    OpSpec("kl_div", F.kl_div, probabilities(kl=True), "nn.functional.kl_div"),
    OpSpec("softmax_method", lambda x, axis: x.softmax(axis), softmaxes()),
    OpSpec("log_softmax_method", lambda x, axis: x.log_softmax(axis), softmaxes()),
    # fused ops of minigrad.nn.functional, each with its composite twin
    OpSpec("gelu", F.gelu, elementwise(approximate=st.sampled_from(["none", "tanh"])),
           "nn.functional.gelu", composite=F.gelu_composite),
    OpSpec("softmax", F.softmax, softmaxes(), lambda torch, x, axis: torch.softmax(x, axis),
           composite=F.softmax_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("log_softmax", F.log_softmax, softmaxes(),
           lambda torch, x, axis: torch.log_softmax(x, axis),
           composite=F.log_softmax_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("cross_entropy", F.cross_entropy, cross_entropies(), "nn.functional.cross_entropy",
           composite=F.cross_entropy_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("layer_norm", F.layer_norm, norms(with_bias=True), "nn.functional.layer_norm",
           composite=F.layer_norm_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("rms_norm", F.rms_norm, norms(with_bias=False), "nn.functional.rms_norm",
           composite=F.rms_norm_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("linear", F.linear, linears(), "nn.functional.linear",
           composite=F.linear_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("embedding", F.embedding, embeddings(), "nn.functional.embedding",
           composite=F.embedding_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("embedding_padding", F.embedding, embeddings(padding=True),
           "nn.functional.embedding", composite=F.embedding_composite,
           tolerances=FUSED_TOLERANCES, finite_differences=False),
    OpSpec("dropout", F.dropout, dropouts(), False,
           composite=F.dropout_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("attention", F.scaled_dot_product_attention, attentions(), torch_attention,
           composite=F.scaled_dot_product_attention_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("attention_dropout", F.scaled_dot_product_attention, attentions(dropout=True),
           False, composite=F.scaled_dot_product_attention_composite,
           tolerances=FUSED_TOLERANCES),
]
FUSED_SPECS = [spec for spec in OP_SPECS if spec.composite is not None]
TORCH_SPECS = [spec for spec in OP_SPECS if spec.torch is not False]
