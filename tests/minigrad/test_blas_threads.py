"""The CPU backend's stacks of small matrix products: run with one OpenBLAS thread, they
give NumPy's results and leave BLAS's thread count as it was."""

import os

import numpy as np
import pytest

import minigrad

cpu = minigrad.get_device("cpu")
needs_openblas = pytest.mark.skipif(cpu.blas is None, reason="NumPy's BLAS is not OpenBLAS")


@needs_openblas
@pytest.mark.parametrize("shape_a, shape_b", [
    ((5, 3, 40, 16), (5, 3, 16, 40)),
    ((2, 64, 32), (32, 64)),  # a stack times one matrix
    ((7, 1, 8, 8), (1, 8, 8)),  # broadcast stack dims
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_stacks_equal_numpy_and_restore_threads(shape_a, shape_b, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape_a).astype(dtype)
    b = rng.standard_normal(shape_b).astype(dtype)
    threads = cpu.blas.count()
    out = cpu.matmul(a, b)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5 if dtype == "float32" else 1e-12)
    assert cpu.blas.count() == threads


@needs_openblas
def test_strided_views_as_in_attention():
    qkv = np.random.default_rng(1).standard_normal((4, 10, 3 * 2 * 8)).astype("float32")
    q, k = (x.reshape(4, 10, 2, 8).swapaxes(1, 2) for x in np.split(qkv, 3, axis=-1)[:2])
    np.testing.assert_allclose(cpu.matmul(q, np.matrix_transpose(k)),
                               q @ np.matrix_transpose(k), rtol=1e-5)


@needs_openblas
def test_one_thread_is_scoped_and_restored_on_errors():
    threads = cpu.blas.count()
    with pytest.raises(RuntimeError), cpu.blas.one_thread():
        assert cpu.blas.count() == 1
        raise RuntimeError("inside")
    assert cpu.blas.count() == threads


def test_matmul_op_uses_the_device_primitive(device, monkeypatch):
    """minigrad's matmul (forward and both gradients) goes through Device.matmul on every
    device and agrees with NumPy."""
    dev = minigrad.get_device(device)
    calls = []
    primitive = dev.matmul
    monkeypatch.setattr(dev, "matmul", lambda x, y: calls.append(1) or primitive(x, y))
    rng = np.random.default_rng(2)
    a_np, b_np = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 6))
    a = minigrad.tensor(a_np, device=device, requires_grad=True)
    b = minigrad.tensor(b_np, device=device, requires_grad=True)
    (a @ b).sum().backward()
    assert len(calls) == 3
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 4, 6)) @ np.swapaxes(b_np, 1, 2))
    np.testing.assert_allclose(b.grad.numpy(), np.swapaxes(a_np, 1, 2) @ np.ones((3, 4, 6)))


@needs_openblas
def test_the_kernels_in_use_are_named():
    """OpenBLAS names the kernels it picked; OPENBLAS_CORETYPE, where set, picks them."""
    assert isinstance(cpu.blas.kernels, str) and cpu.blas.kernels
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        assert cpu.blas.kernels.lower() == forced.lower()


def test_sums_of_squares_match_numpy_on_every_device(device):
    device = minigrad.get_device(device)
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(shape) for shape in ((3, 4), (), (0,), (5,), (2, 1, 3))]
    got = device.to_host(device.sums_of_squares([device.asarray(a) for a in arrays]))
    np.testing.assert_allclose(got, [np.sum(a * a) for a in arrays], rtol=1e-12)
