"""The fused ops of minigrad.nn.functional against their composite twins, finite
differences and PyTorch, driven by one table of cases.

Each case draws its inputs with hypothesis (shapes, options and a seed for the values):
named arrays (float ones are differentiated) and options. Every case then runs through
the same checks:
- fused vs composite, values and gradients, float64, on 'cpu' and 'strict' (where the
  fused op must also make no host transfer);
- `minigrad.gradcheck` of the fused op in float64;
- PyTorch on the same inputs: float64 tight, float32 loose (and float32 stays float32).
Op-specific behaviour (errors, stability, options) is in test_functional_behaviour.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad
import minigrad.nn.functional as F

torch.set_num_threads(1)
# The `device` fixture is a plain string: nothing to reset between hypothesis examples.
device_settings = settings(suppress_health_check=[
    *settings().suppress_health_check, HealthCheck.function_scoped_fixture])


@dataclass
class Case:
    name: str
    fused: Callable
    composite: Callable
    torch: Callable | None  # None: no PyTorch twin (dropout draws its own numbers)
    draw: Callable  # (data) -> (arrays: dict name -> ndarray, options: dict)


def sizes(data, min_dims, max_dims, low=1, high=4) -> tuple:
    n = data.draw(st.integers(min_dims, max_dims))
    return tuple(data.draw(st.integers(low, high)) for _ in range(n))


def values_rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))


# -- inputs -------------------------------------------------------------------------------
def draw_softmax(data):
    x = values_rng(data).standard_normal(sizes(data, 1, 4)) * 3
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    return {"x": x}, {"axis": axis}


def draw_cross_entropy(data):
    rng = values_rng(data)
    lead, n_classes = sizes(data, 0, 2), data.draw(st.integers(1, 6))
    ignore_index = data.draw(st.sampled_from([-100, 0]))
    targets = rng.integers(0, n_classes, lead)
    ignored = rng.random(lead) < data.draw(st.sampled_from([0.0, 0.3]))
    targets = np.where(ignored, ignore_index, targets).reshape(lead)
    if targets.size and ignore_index == -100:
        targets.reshape(-1)[0] = n_classes - 1  # at least one target counts
    options = {"ignore_index": ignore_index,
               "reduction": data.draw(st.sampled_from(["mean", "sum", "none"])),
               "label_smoothing": data.draw(st.sampled_from([0.0, 0.1, 0.6]))}
    if ignore_index == 0 and options["reduction"] == "mean":
        options["ignore_index"] = -100  # class 0 may be every target: keep the mean finite
    return {"logits": rng.standard_normal(lead + (n_classes,)) * 2,
            "targets": targets}, options


def draw_norm(data, with_bias):
    rng = values_rng(data)
    shape = sizes(data, 1, 2, 2, 5)
    x = rng.standard_normal(sizes(data, 0, 2) + shape) * 2 + 0.5
    arrays = {"x": x}
    if data.draw(st.booleans()):
        arrays["weight"] = rng.standard_normal(shape)
    if with_bias and data.draw(st.booleans()):
        arrays["bias"] = rng.standard_normal(shape)
    return arrays, {"normalized_shape": shape, "eps": data.draw(st.sampled_from([1e-5, 0.1]))}


def draw_linear(data):
    rng = values_rng(data)
    n_in, n_out = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    arrays = {"x": rng.standard_normal(sizes(data, 0, 2) + (n_in,)),
              "weight": rng.standard_normal((n_out, n_in))}
    if data.draw(st.booleans()):
        arrays["bias"] = rng.standard_normal(n_out)
    return arrays, {}


def draw_embedding(data):
    rng = values_rng(data)
    vocab, dim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    return {"ids": rng.integers(0, vocab, sizes(data, 0, 2)),  # repeats are likely
            "weight": rng.standard_normal((vocab, dim))}, {}


def draw_dropout(data):
    x = values_rng(data).standard_normal(sizes(data, 1, 3))
    return {"x": x}, {"p": data.draw(st.sampled_from([0.1, 0.5, 0.9])),
                      "seed": data.draw(st.integers(0, 1000))}


def draw_attention(data):
    rng = values_rng(data)
    lead = sizes(data, 1, 2, 1, 3)
    tq, tk = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    d, dv = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    arrays = {"q": rng.standard_normal(lead + (tq, d)), "k": rng.standard_normal(lead + (tk, d)),
              "v": rng.standard_normal(lead + (tk, dv))}
    options = {"causal": data.draw(st.booleans()),
               "scale": data.draw(st.sampled_from([None, 0.7]))}
    kind = data.draw(st.sampled_from(["none", "bool", "additive"]))
    if kind != "none":
        full = lead + (tq, tk)
        shape = tuple(n if data.draw(st.booleans()) else 1 for n in full)
        shape = shape[data.draw(st.integers(0, len(shape) - 2)):]  # fewer leading dims too
        if kind == "bool":
            mask = rng.random(shape) < 0.7
            mask[..., 0] = True  # every query sees key 0 (the composite gives nan otherwise)
            options["mask"] = mask
        else:
            arrays["mask"] = rng.standard_normal(shape)  # differentiated as well
    return arrays, options


def draw_attention_dropout(data):
    arrays, options = draw_attention(data)
    options.update(dropout_p=data.draw(st.sampled_from([0.2, 0.5])),
                   seed=data.draw(st.integers(0, 1000)))
    return arrays, options


# -- PyTorch twins ----------------------------------------------------------------------
def torch_cross_entropy(logits, targets, reduction, **options):
    n_classes = logits.shape[-1]
    out = TF.cross_entropy(logits.reshape(-1, n_classes), targets.reshape(-1),
                           reduction=reduction, **options)
    return out.reshape(targets.shape) if reduction == "none" else out


def torch_attention(q, k, v, mask=None, causal=False, scale=None):
    if mask is not None and causal:  # PyTorch takes one or the other: merge them
        tq, tk = q.shape[-2], k.shape[-2]
        visible = torch.ones(tq, tk, dtype=torch.bool).tril()
        mask = (mask & visible if mask.dtype == torch.bool
                else torch.where(visible, mask, float("-inf")))
        causal = False
    return TF.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           scale=scale)


def torch_linear(x, weight, bias=None):
    return TF.linear(x, weight, bias)


CASES = [
    Case("softmax", F.softmax, F.softmax_composite,
         lambda x, axis: torch.softmax(x, dim=axis), draw_softmax),
    Case("log_softmax", F.log_softmax, F.log_softmax_composite,
         lambda x, axis: torch.log_softmax(x, dim=axis), draw_softmax),
    Case("cross_entropy", F.cross_entropy, F.cross_entropy_composite, torch_cross_entropy,
         draw_cross_entropy),
    Case("layer_norm", F.layer_norm, F.layer_norm_composite,
         lambda x, normalized_shape, weight=None, bias=None, eps=1e-5: TF.layer_norm(
             x, normalized_shape, weight, bias, eps),
         lambda data: draw_norm(data, with_bias=True)),
    Case("rms_norm", F.rms_norm, F.rms_norm_composite,
         lambda x, normalized_shape, weight=None, eps=1e-6: TF.rms_norm(
             x, normalized_shape, weight, eps),
         lambda data: draw_norm(data, with_bias=False)),
    Case("linear", F.linear, F.linear_composite, torch_linear, draw_linear),
    Case("embedding", F.embedding, F.embedding_composite,
         lambda ids, weight: TF.embedding(ids, weight), draw_embedding),
    Case("dropout", F.dropout, F.dropout_composite, None, draw_dropout),
    Case("attention", F.scaled_dot_product_attention, F.scaled_dot_product_attention_composite,
         torch_attention, draw_attention),
    Case("attention_dropout", F.scaled_dot_product_attention,
         F.scaled_dot_product_attention_composite, None, draw_attention_dropout),
]
IDS = [case.name for case in CASES]
TORCH_CASES = [case for case in CASES if case.torch is not None]


# -- running a case -----------------------------------------------------------------------
def is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def to_minigrad(arrays: dict, options: dict, dtype: str, device: str):
    """Tensors (float arrays differentiable) and options with arrays made tensors and the
    seed made a fresh generator, so every call draws the same numbers."""
    tensors = {name: minigrad.tensor(a, dtype=dtype if is_float(a) else None, device=device,
                                     requires_grad=is_float(a))
               for name, a in arrays.items()}
    opts = {name: minigrad.tensor(v, dtype=dtype if is_float(v) else None, device=device)
            if isinstance(v, np.ndarray) else v for name, v in options.items()}
    if "seed" in opts:
        opts["generator"] = minigrad.Generator(opts.pop("seed"), device=device)
    return tensors, opts


def run_minigrad(fn, arrays, options, dtype="float64", device="cpu", count_transfers=False):
    """fn's output and the gradients of the float inputs (for a fixed random cotangent),
    as NumPy arrays; with count_transfers, also the host transfers fn made."""
    tensors, opts = to_minigrad(arrays, options, dtype, device)
    dev = minigrad.get_device(device)
    before = dev.host_transfers
    out = fn(**tensors, **opts)
    cotangent = np.random.default_rng(0).standard_normal(out.shape)
    upstream = minigrad.tensor(cotangent, dtype=out.dtype, device=device)
    out.backward(upstream)
    transfers = dev.host_transfers - before
    # Neither the forward nor the backward may write into arrays they do not own.
    for name, t in tensors.items():
        np.testing.assert_array_equal(t.numpy(), np.asarray(arrays[name], dtype=t.numpy().dtype),
                                      err_msg=f"input {name} was modified")
    np.testing.assert_array_equal(upstream.numpy(), np.asarray(cotangent, out.numpy().dtype),
                                  "upstream gradient modified")
    grads = {name: t.grad.numpy() for name, t in tensors.items() if t.requires_grad}
    assert all(t.grad.dtype == out.dtype for t in tensors.values() if t.requires_grad)
    result = (out.numpy(), grads)
    return result + (transfers,) if count_transfers else result


def run_torch(fn, arrays, options, dtype=torch.float64):
    def convert(a, grad):
        return torch.tensor(a, dtype=dtype, requires_grad=grad) if is_float(a) else torch.tensor(a)

    tensors = {name: convert(a, True) for name, a in arrays.items()}
    opts = {name: convert(v, False) if isinstance(v, np.ndarray) else v
            for name, v in options.items()}
    out = fn(**tensors, **opts)
    cotangent = np.random.default_rng(0).standard_normal(tuple(out.shape))
    out.backward(torch.tensor(cotangent, dtype=dtype))
    return out.detach().numpy(), {n: t.grad.numpy() for n, t in tensors.items() if is_float(
        arrays[n])}


def assert_same(actual, expected, rtol, atol, what):
    out_a, grads_a = actual
    out_e, grads_e = expected
    np.testing.assert_allclose(out_a, out_e, rtol=rtol, atol=atol, err_msg=f"{what}: output")
    assert grads_a.keys() == grads_e.keys()
    for name in grads_e:
        np.testing.assert_allclose(grads_a[name], grads_e[name], rtol=rtol, atol=atol,
                                   err_msg=f"{what}: gradient of {name}")


# -- the checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@device_settings
@given(data=st.data())
def test_fused_matches_composite(case, device, data):
    arrays, options = case.draw(data)
    out, grads, transfers = run_minigrad(case.fused, arrays, options, device=device,
                                         count_transfers=True)
    expected = run_minigrad(case.composite, arrays, options, device=device)
    assert_same((out, grads), expected, 1e-9, 1e-11, f"{case.name} fused vs composite")
    assert transfers == 0, f"{case.name}: {transfers} host transfers on {device}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=10)
@given(data=st.data())
def test_fused_gradcheck(case, data):
    arrays, options = case.draw(data)
    tensors, _ = to_minigrad(arrays, {}, "float64", "cpu")
    names = list(tensors)

    def fn(*inputs):  # a fresh generator per call: every evaluation drops the same elements
        _, opts = to_minigrad({}, options, "float64", "cpu")
        return case.fused(**dict(zip(names, inputs)), **opts)

    assert minigrad.gradcheck(fn, *tensors.values(), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.name for c in TORCH_CASES])
@device_settings
@given(data=st.data())
def test_fused_matches_torch(case, device, data):
    arrays, options = case.draw(data)
    expected64 = run_torch(case.torch, arrays, options, torch.float64)
    assert_same(run_minigrad(case.fused, arrays, options, "float64", device), expected64,
                1e-9, 1e-11, f"{case.name} float64 vs torch")
    expected32 = run_torch(case.torch, arrays, options, torch.float32)
    out32, grads32 = run_minigrad(case.fused, arrays, options, "float32", device)
    assert out32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32.values())
    # float32 rounding, amplified where the math is ill-conditioned (a layer_norm row of
    # nearly equal values), moves PyTorch and us apart by a few 1e-4 relative.
    assert_same((out32, grads32), expected32, 1e-3, 1e-4, f"{case.name} float32 vs torch")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=5)
@given(data=st.data())
def test_second_backward_with_retained_graph_doubles_the_gradient(case, data):
    """A backward that wrote into its saved arrays would give a different second result."""
    arrays, options = case.draw(data)
    tensors, opts = to_minigrad(arrays, options, "float64", "cpu")
    out = case.fused(**tensors, **opts)
    upstream = minigrad.tensor(np.random.default_rng(0).standard_normal(out.shape))
    out.backward(upstream, retain_graph=True)
    first = {name: t.grad.numpy().copy() for name, t in tensors.items() if t.requires_grad}
    out.backward(upstream)
    for name, g in first.items():
        np.testing.assert_allclose(tensors[name].grad.numpy(), 2 * g, rtol=1e-12, atol=1e-14)
