"""The NumPy device's CPU kernels (minigrad.backends.numpy_kernels) against the array-API
code they replace: each op runs on 'cpu' with its kernel and with the device's fused-op
table emptied, in float32 and float64, and values and gradients must agree to rounding."""

from contextlib import contextmanager

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad.backends import Device
from minigrad.backends.numpy_kernels import BLOCK_BYTES

CPU = mg.get_device("cpu")
# Relative to the largest magnitude in the reference (sums over many rows may cancel).
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ["float32", "float64"]


@contextmanager
def kernels_disabled(device):
    """Run the ops' array-API code on `device` for the duration."""
    saved = device.fused_ops
    device.fused_ops = {}
    try:
        yield device
    finally:
        device.fused_ops = saved


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
    assert set(CPU.fused_ops) == {"gelu"}
    assert mg.get_device("strict").fused_ops == {}


def test_gelu_runs_through_the_kernel_unless_disabled():
    x = mg.tensor(np.linspace(-3, 3, 8), requires_grad=True)
    assert F.gelu(x)._ctx.kernel is CPU.fused_ops["gelu"]
    with kernels_disabled(CPU):
        assert F.gelu(x)._ctx.kernel is None
    assert CPU.fused_ops["gelu"] is not None  # restored


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("shape", [(7,), (3, 50, 200), (2, BLOCK_BYTES // 4 + 5)])
def test_gelu_matches_array_api(dtype, approximate, shape):
    x = np.random.default_rng(3).standard_normal(shape) * 4
    assert_same(run_both(lambda t: F.gelu(t, approximate=approximate), [x], dtype), dtype)


def test_gelu_kernel_reads_a_non_contiguous_input():
    x = np.random.default_rng(4).standard_normal((6, 9))
    assert_same(run_both(lambda t: F.gelu(t.T, approximate="tanh"), [x],
                         "float64"), "float64")


def test_gradients_of_a_graph_used_twice_agree():
    """retain_graph: a second backward through the kernels sees the same saved arrays."""
    x = mg.tensor(np.random.default_rng(5).standard_normal((4, 16)), requires_grad=True)
    out = (F.gelu(x, approximate="tanh") * F.gelu(x)).sum()
    out.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_update_matches_the_array_api_formula_exactly(dtype, weight_decay):
    """The NumPy device runs the one AdamW formula with reused scratch buffers: the same
    bits as the array-API definition (`Device.adamw_update`, fresh buffers), over several
    steps and over flat buffers spanning several update blocks."""
    rng = np.random.default_rng(6)
    inits = [rng.standard_normal(s).astype(dtype) for s in [(300, 200), (7,), (64, 3)]]
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in inits] for _ in range(3)]
    finals = []
    for update in (CPU.adamw_update, lambda *args: Device.adamw_update(CPU, *args)):
        params = [nn.Parameter(mg.tensor(a.copy())) for a in inits]
        optimizer = optim.AdamW(params, lr=0.01, weight_decay=weight_decay)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = mg.tensor(g)
            with _adamw_update(update):
                optimizer.step()
        finals.append([p.numpy() for p in params])
    for with_kernel, reference in zip(*finals, strict=True):
        np.testing.assert_array_equal(with_kernel, reference)


@contextmanager
def _adamw_update(update):
    CPU.adamw_update = update  # an instance attribute shadows the method
    try:
        yield
    finally:
        del CPU.adamw_update
