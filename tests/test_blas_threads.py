"""The CPU's stacked matmul: stacks of products split across threads, one BLAS thread
each, give NumPy's results and leave BLAS's thread count as it was."""

import numpy as np
import pytest

import minigrad
from minigrad.blas_threads import StackedMatmul

cpu = minigrad.get_device("cpu")
needs_openblas = pytest.mark.skipif(cpu._stacked_matmul is None,
                                    reason="NumPy's BLAS is not OpenBLAS")


@needs_openblas
@pytest.mark.parametrize("shape_a, shape_b", [
    ((5, 3, 40, 16), (5, 3, 16, 40)),  # a stack split unevenly
    ((2, 64, 32), (2, 32, 64)),
    ((7, 1, 8, 8), (7, 1, 8, 8)),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_products_equal_numpy(monkeypatch, shape_a, shape_b, dtype):
    monkeypatch.setattr(cpu, "stacked_matmul_min_work", 0)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape_a).astype(dtype)
    b = rng.standard_normal(shape_b).astype(dtype)
    threads = cpu._stacked_matmul.get_threads()
    out = cpu.matmul(a, b)
    assert out.dtype == dtype and out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5 if dtype == "float32" else 1e-12)
    assert cpu._stacked_matmul.get_threads() == threads


@needs_openblas
def test_strided_views_and_broadcasts(monkeypatch):
    """Attention's operands are strided views; a broadcast stack takes NumPy's path."""
    monkeypatch.setattr(cpu, "stacked_matmul_min_work", 0)
    qkv = np.random.default_rng(1).standard_normal((4, 10, 3 * 2 * 8)).astype("float32")
    q, k = (x.reshape(4, 10, 2, 8).swapaxes(1, 2) for x in np.split(qkv, 3, axis=-1)[:2])
    np.testing.assert_allclose(cpu.matmul(q, np.matrix_transpose(k)),
                               q @ np.matrix_transpose(k), rtol=1e-5)
    w = np.ones((8, 3), dtype="float32")
    np.testing.assert_array_equal(cpu.matmul(q, w), q @ w)


def test_stacked_matmul_splits_the_stack_and_restores_threads():
    calls, threads = [], [4]

    def fake_matmul(a, b, out):
        calls.append((a.shape[0], threads[0]))
        out[...] = np.matmul(a, b)

    def set_threads(n):
        threads[0] = n

    stacked = StackedMatmul(fake_matmul, (lambda: threads[0], set_threads))
    a = np.arange(6 * 4, dtype="float64").reshape(6, 2, 2)
    out = stacked(a, a, np.empty_like(a))
    np.testing.assert_array_equal(out, a @ a)
    assert sorted(n for n, _ in calls) == [1, 1, 2, 2]  # 6 products in 4 chunks
    assert all(t == 1 for _, t in calls)  # one BLAS thread while the stack runs
    assert threads[0] == 4
