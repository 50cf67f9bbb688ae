"""The NumPy device's CPU kernels (minigrad.cpu_kernels) against the array-API code they
replace: each op runs on 'cpu' with its kernel and inside `kernels_disabled`, in float32
and float64, and values and gradients must agree to rounding."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.cpu_kernels import BLOCK_BYTES, kernels_disabled

CPU = mg.get_device("cpu")
# Relative to the largest magnitude in the reference (sums over many rows may cancel).
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ["float32", "float64"]


def run_both(fn, arrays, dtype, grad_seed=0):
    """(outputs, gradients) of sum(fn(*tensors) * upstream), with and without kernels."""
    results = []
    for use_kernels in (True, False):
        tensors = [mg.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        if use_kernels:
            out = fn(*tensors)
        else:
            with kernels_disabled(CPU):
                out = fn(*tensors)
        upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(dtype)
        out.backward(mg.tensor(upstream))
        results.append((out.numpy(), [t.grad.numpy() for t in tensors]))
    return results


def assert_close(actual, reference, dtype):
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(actual, reference, rtol=tol,
                               atol=tol * float(np.max(np.abs(reference), initial=1.0)))


def assert_same(results, dtype):
    (out_k, grads_k), (out_a, grads_a) = results
    assert_close(out_k, out_a, dtype)
    for gk, ga in zip(grads_k, grads_a, strict=True):
        assert_close(gk, ga, dtype)


def test_kernels_are_installed_on_cpu_only():
    assert {"gelu", "adamw"} <= set(CPU.kernels)
    assert mg.get_device("strict").kernels == {}


def test_gelu_runs_through_the_kernel_unless_disabled():
    x = mg.tensor(np.linspace(-3, 3, 8), requires_grad=True)
    assert mg.gelu(x)._ctx.kernel is CPU.kernels["gelu"]
    with kernels_disabled(CPU):
        assert mg.gelu(x)._ctx.kernel is None


def test_kernels_disabled_restores_the_kernels():
    before = CPU.kernels
    with kernels_disabled(CPU):
        assert CPU.kernels == {}
    assert CPU.kernels is before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("shape", [(7,), (3, 50, 200), (2, BLOCK_BYTES // 4 + 5)])
def test_gelu_matches_array_api(dtype, approximate, shape):
    x = np.random.default_rng(3).standard_normal(shape) * 4
    assert_same(run_both(lambda t: mg.gelu(t, approximate=approximate), [x], dtype), dtype)


def test_gelu_kernel_reads_a_non_contiguous_input():
    x = np.random.default_rng(4).standard_normal((6, 9))
    assert_same(run_both(lambda t: mg.gelu(t.transpose(), approximate="tanh"), [x],
                         "float64"), "float64")


def test_gradients_of_a_graph_used_twice_agree():
    """retain_graph: a second backward through the kernels sees the same saved arrays."""
    x = mg.tensor(np.random.default_rng(5).standard_normal((4, 16)), requires_grad=True)
    out = (mg.gelu(x, approximate="tanh") * mg.gelu(x)).sum()
    out.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_matches_array_api_exactly(dtype, weight_decay):
    """The kernel makes the array-API update's operations in the same order: the same
    bits, over several steps and over flat buffers spanning several update blocks."""
    rng = np.random.default_rng(6)
    inits = [rng.standard_normal(s).astype(dtype) for s in [(300, 200), (7,), (64, 3)]]
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in inits] for _ in range(3)]
    finals = []
    for use_kernels in (True, False):
        params = [nn.Parameter(mg.tensor(a.copy())) for a in inits]
        optimizer = optim.AdamW(params, lr=0.01, weight_decay=weight_decay)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = mg.tensor(g)
            if use_kernels:
                optimizer.step()
            else:
                with kernels_disabled(CPU):
                    optimizer.step()
        finals.append([p.numpy() for p in params])
    for with_kernel, reference in zip(*finals, strict=True):
        np.testing.assert_array_equal(with_kernel, reference)
