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
class Case:
    """One call: ``fn(*args, **kwargs, **params)``.

    args and kwargs are the tensor inputs: each a shape (float values drawn from the
    spec's domain) or a NumPy array used as given (boolean masks, integer ids, or floats
    made from a seed where hypothesis' shrinking towards equal values would make the op
    ill-conditioned). Float inputs are differentiated. In params, NumPy arrays (also
    inside tuples, as index keys) become constant tensors and a `Seed` a generator.
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
def elementwise(draw, n: int = 1, min_side: int = 0, kinds: str = "", **params):
    """n mutually broadcastable inputs (0-d, size-1 and empty axes included); kinds gives
    each input's kind, 'f' float (the default) or 'b' bool; params are strategies."""
    shapes = draw(mt.broadcastable_shapes(n, min_side=min_side))
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
def reductions(draw, min_side: int = 0, correction: bool = False):
    shape = draw(mt.shapes(min_side=min_side))
    axis = draw(axes_for(len(shape)))
    params = {"axis": axis, "keepdims": draw(st.booleans())}
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
        return Case((shape,), params={"axes": None})
    order = draw(st.permutations(range(ndim)))
    negate = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    axes = tuple(a - ndim if n else a for a, n in zip(order, negate))
    return Case((shape,), params={"axes": axes})


@st.composite
def swaps(draw):
    shape = draw(mt.shapes(min_dims=1))
    ndim = len(shape)
    axis = st.integers(-ndim, ndim - 1)
    return Case((shape,), params={"axis1": draw(axis), "axis2": draw(axis)})


@st.composite
def squeezes(draw):
    shape = draw(mt.shapes(max_side=2))
    ones = [i for i, n in enumerate(shape) if n == 1]
    choices = [st.none()]
    if ones:
        choices += [st.sampled_from(ones),
                    st.lists(st.sampled_from(ones), min_size=1, unique=True).map(tuple)]
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
    x = values_rng(draw).standard_normal(sizes(draw, 1, 4)) * 3
    return Case((x,), params={"axis": draw(st.integers(-x.ndim, x.ndim - 1))})


@st.composite
def cross_entropies(draw):
    rng = values_rng(draw)
    lead, n_classes = sizes(draw, 0, 2), draw(st.integers(1, 6))
    ignore_index = draw(st.sampled_from([-100, 0]))
    targets = rng.integers(0, n_classes, lead)
    ignored = rng.random(lead) < draw(st.sampled_from([0.0, 0.3]))
    targets = np.where(ignored, ignore_index, targets).reshape(lead)
    if targets.size and ignore_index == -100:
        targets.reshape(-1)[0] = n_classes - 1  # at least one target counts
    params = {"ignore_index": ignore_index,
              "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
              "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.6]))}
    if ignore_index == 0 and params["reduction"] == "mean":
        params["ignore_index"] = -100  # class 0 may be every target: keep the mean finite
    return Case((rng.standard_normal(lead + (n_classes,)) * 2, targets), params=params)


@st.composite
def norms(draw, with_bias: bool):
    rng = values_rng(draw)
    shape = sizes(draw, 1, 2, 2, 5)
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
def embeddings(draw):
    rng = values_rng(draw)
    vocab, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    ids = rng.integers(0, vocab, sizes(draw, 0, 2))  # repeats are likely
    return Case((ids, rng.standard_normal((vocab, dim))))


@st.composite
def dropouts(draw):
    x = values_rng(draw).standard_normal(sizes(draw, 1, 3))
    return Case((x,), params={"p": draw(st.sampled_from([0.1, 0.5, 0.9])),
                              "generator": Seed(draw(st.integers(0, 1000)))})


@st.composite
def attentions(draw, dropout: bool = False):
    rng = values_rng(draw)
    lead = sizes(draw, 1, 2, 1, 3)
    tq, tk = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    d, dv = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    args = (rng.standard_normal(lead + (tq, d)), rng.standard_normal(lead + (tk, d)),
            rng.standard_normal(lead + (tk, dv)))
    kwargs, params = {}, {"causal": draw(st.booleans()),
                          "scale": draw(st.sampled_from([None, 0.7]))}
    kind = draw(st.sampled_from(["none", "bool", "additive"]))
    if kind != "none":
        full = lead + (tq, tk)
        shape = tuple(n if draw(st.booleans()) else 1 for n in full)
        shape = shape[draw(st.integers(0, len(shape) - 2)):]  # fewer leading dims too
        if kind == "bool":
            mask = rng.random(shape) < 0.7
            mask[..., 0] = True  # every query sees key 0 (the composite gives nan otherwise)
            params["mask"] = mask
        else:
            kwargs["mask"] = rng.standard_normal(shape)  # differentiated as well
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


def torch_cross_entropy(torch, logits, targets, reduction, **params):
    n_classes = logits.shape[-1]
    out = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), targets.reshape(-1),
                                            reduction=reduction, **params)
    return out.reshape(targets.shape) if reduction == "none" else out


def torch_attention(torch, q, k, v, mask=None, causal=False, scale=None):
    if mask is not None and causal:  # PyTorch takes one or the other: merge them
        visible = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        mask = (mask & visible if mask.dtype == torch.bool
                else torch.where(visible, mask, float("-inf")))
        causal = False
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                            is_causal=causal, scale=scale)


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
    OpSpec("neg", lambda x: -x, elementwise()),
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
    OpSpec("max", mg.max, reductions(min_side=1), torch_reduction("amax"),
           mt.safe_domain("max")),
    OpSpec("min", mg.min, reductions(min_side=1), torch_reduction("amin"),
           mt.safe_domain("min")),
    OpSpec("var", mg.var, reductions(min_side=1, correction=True), torch_reduction("var")),
    OpSpec("logsumexp", mg.logsumexp, reductions(min_side=1), torch_reduction("logsumexp")),
    # shapes
    OpSpec("reshape", mg.reshape, reshapes(), "reshape"),
    OpSpec("transpose", mg.transpose, permutations(), torch_transpose),
    OpSpec("swapaxes", mg.swapaxes, swaps(),
           lambda torch, x, axis1, axis2: torch.swapaxes(x, axis1, axis2)),
    OpSpec("squeeze", mg.squeeze, squeezes(), torch_squeeze),
    OpSpec("unsqueeze", mg.unsqueeze, unsqueezes(),
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
    # joining and splitting
    OpSpec("concatenate", lambda *xs, axis: mg.concatenate(xs, axis), joins(),
           lambda torch, *xs, axis: torch.cat(xs, axis)),
    OpSpec("stack", lambda *xs, axis: mg.stack(xs, axis), joins(stack=True),
           lambda torch, *xs, axis: torch.stack(xs, axis)),
    OpSpec("split", lambda x, sections, axis: x.split(sections, axis), splits(),
           lambda torch, x, sections, axis: torch.split(x, sections, dim=axis)),
    # matmul
    OpSpec("matmul", lambda a, b: a @ b, matmuls()),
    # fused ops of minigrad.nn.functional, each with its composite twin
    OpSpec("gelu", F.gelu, elementwise(approximate=st.sampled_from(["none", "tanh"])),
           "nn.functional.gelu", composite=F.gelu_composite),
    OpSpec("softmax", F.softmax, softmaxes(), lambda torch, x, axis: torch.softmax(x, axis),
           composite=F.softmax_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("log_softmax", F.log_softmax, softmaxes(),
           lambda torch, x, axis: torch.log_softmax(x, axis),
           composite=F.log_softmax_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("cross_entropy", F.cross_entropy, cross_entropies(), torch_cross_entropy,
           composite=F.cross_entropy_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("layer_norm", F.layer_norm, norms(with_bias=True), "nn.functional.layer_norm",
           composite=F.layer_norm_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("rms_norm", F.rms_norm, norms(with_bias=False), "nn.functional.rms_norm",
           composite=F.rms_norm_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("linear", F.linear, linears(), "nn.functional.linear",
           composite=F.linear_composite, tolerances=FUSED_TOLERANCES),
    OpSpec("embedding", F.embedding, embeddings(), "nn.functional.embedding",
           composite=F.embedding_composite, tolerances=FUSED_TOLERANCES),
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
