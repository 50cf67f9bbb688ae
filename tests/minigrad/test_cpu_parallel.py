"""The CPU backend's worker threads (`NumpyDevice.parallel_map`) and its host memory reuse:
work split among the workers gives exactly the single-thread results, and a freed large
array's pages are reused without page faults."""

from __future__ import annotations

import importlib
import resource
import subprocess
import sys

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
import minigrad.nn.functional.attention as attention_module
from minigrad.backends import numpy_kernels

cpu = minigrad.get_device("cpu")


@pytest.fixture
def workers(monkeypatch):
    """A function setting the CPU device's worker count (restored after the test)."""
    monkeypatch.setattr(cpu, "workers", cpu.workers)
    return lambda n: setattr(cpu, "workers", n)


def test_parallel_map_keeps_order_and_restores_blas_threads(workers):
    workers(3)
    threads = cpu.blas.count() if cpu.blas is not None else None
    assert cpu.parallel_map(lambda i: i * i, range(5)) == [0, 1, 4, 9, 16]
    assert cpu.parallel_map(lambda i: i, []) == []
    with pytest.raises(ZeroDivisionError):
        cpu.parallel_map(lambda i: 1 // (i - 2), range(4))
    if threads is not None:
        assert cpu.blas.count() == threads


def attention_results(causal: bool, mask: bool, dropout_p: float) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    q, k, v = (minigrad.tensor(rng.standard_normal((5, 3, 7, 4)), requires_grad=True)
               for _ in range(3))
    extra = {}
    if mask:
        extra["attn_mask"] = minigrad.tensor(rng.standard_normal((5, 3, 7, 7)),
                                             requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout_p,
                                         generator=minigrad.Generator(3), **extra)
    out.backward(minigrad.tensor(rng.standard_normal(out.shape)))
    tensors = [q, k, v, *extra.values()]
    return [out.numpy(), *(t.grad.numpy() for t in tensors)]


@pytest.mark.parametrize("causal, mask, dropout_p", [
    (True, False, 0.0), (False, True, 0.0), (True, True, 0.5), (False, False, 0.3)])
def test_attention_split_over_the_batch_equals_one_part(workers, monkeypatch, causal, mask,
                                                        dropout_p):
    monkeypatch.setattr(attention_module, "PARALLEL_WORK", 0)  # split even tiny inputs
    monkeypatch.setattr(attention_module, "QUERY_BLOCK", 3)  # several row blocks, one ragged
    workers(1)
    single = attention_results(causal, mask, dropout_p)
    workers(2)
    fn = attention_module.ScaledDotProductAttention(1.0, causal, 0.0, None)
    fn.device = cpu
    assert len(fn.parts(np.zeros((5, 3, 7, 4)), 7)) == 2
    for split, whole in zip(attention_results(causal, mask, dropout_p), single, strict=True):
        np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_kernel_blocks_dealt_among_workers_equal_one_worker(workers, approximate,
                                                                 monkeypatch):
    monkeypatch.setattr(numpy_kernels, "PARALLEL_WORK", 0)
    x_np = np.random.default_rng(2).standard_normal(5 * numpy_kernels.BLOCK_BYTES // 4 + 3)
    results = []
    for n in (1, 3):
        workers(n)
        x = minigrad.tensor(x_np.astype("float32"), requires_grad=True)
        y = F.gelu(x, approximate=approximate)
        y.backward(minigrad.tensor(np.cos(x_np).astype("float32")))
        results.append((y.numpy(), x.grad.numpy()))
    assert len(numpy_kernels._parts(cpu, x_np.size, 4)) == 3
    for split, whole in zip(*results, strict=True):
        np.testing.assert_array_equal(split, whole)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not cpu.reuses_freed_memory, reason="the C library is not glibc")
def test_freed_large_arrays_stay_mapped_for_reuse():
    """glibc would unmap a freed 64 MB block (above its largest mmap threshold, 32 MB) and
    the next one would fault in fresh pages; kept in the heap, it stays resident."""
    block = np.ones(64 * 2**20, dtype=np.uint8)  # allocated and touched
    resident = resident_bytes()
    del block
    assert resident - resident_bytes() < 8 * 2**20


WORKER_THREAD_ROUNDS = """
import resource
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import minigrad

minigrad.get_device("cpu")  # the CPU device sets malloc up when it is made


def step():
    blocks = [np.ones(20 * 2**20, dtype=np.uint8) for _ in range(8)]
    del blocks


with ThreadPoolExecutor(1) as pool:  # one worker thread, as the device's helpers
    pool.submit(step).result()  # faults the pages in
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        pool.submit(step).result()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


@pytest.mark.skipif(not cpu.reuses_freed_memory, reason="the C library is not glibc")
def test_a_worker_threads_freed_arrays_stay_mapped_too():
    """A thread's own malloc arena hands freed blocks' pages back (in a standalone run of
    this pattern: 3,129 faults in the three later rounds); with one arena for every
    thread the later rounds reuse the first round's pages (0 faults). Run in a fresh
    process, as a user's: glibc would still hand new threads an arena that a live thread
    made before the device set malloc up (pytest-xdist's receiver thread's, here)."""
    result = subprocess.run([sys.executable, "-c", WORKER_THREAD_ROUNDS], capture_output=True,
                            text=True, check=True)
    assert int(result.stdout) < 500


def test_linear_backward_gemms_side_by_side_equal_one_worker(workers, monkeypatch):
    linear_module = importlib.import_module("minigrad.nn.functional.linear")  # not F.linear
    monkeypatch.setattr(linear_module, "PARALLEL_WORK", 0)
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape).astype("float32") for shape in ((3, 5, 8), (6, 8), (6,))]
    results = []
    for n in (1, 2):
        workers(n)
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in arrays)
        F.linear(x, w, b).backward(minigrad.tensor(np.ones((3, 5, 6), "float32")))
        results.append([t.grad.numpy() for t in (x, w, b)])
    for split, whole in zip(*results, strict=True):
        np.testing.assert_array_equal(split, whole)


def test_layer_norm_rows_split_among_workers_match_one_worker(workers, monkeypatch):
    layer_norm_module = importlib.import_module("minigrad.nn.functional.layer_norm")
    monkeypatch.setattr(layer_norm_module, "PARALLEL_WORK", 0)
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(shape) for shape in ((3, 7, 8), (8,), (8,))]
    results = []
    for n in (1, 2):
        workers(n)
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in arrays)
        y = F.layer_norm(x, 8, w, b)
        y.backward(minigrad.tensor(np.sin(np.arange(168.0)).reshape(3, 7, 8)))
        results.append([y.numpy(), *(t.grad.numpy() for t in (x, w, b))])
    (y1, dx1, dw1, db1), (y2, dx2, dw2, db2) = results
    np.testing.assert_array_equal(y2, y1)  # rows are computed alike
    np.testing.assert_array_equal(dx2, dx1)
    np.testing.assert_allclose(dw2, dw1, rtol=1e-12)  # sums over rows, added in two parts
    np.testing.assert_allclose(db2, db1, rtol=1e-12)


def test_layer_norm_in_row_blocks_is_the_same_for_any_number_of_workers(workers,
                                                                        monkeypatch):
    layer_norm_module = importlib.import_module("minigrad.nn.functional.layer_norm")
    monkeypatch.setattr(layer_norm_module, "PARALLEL_WORK", 0)
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(shape) for shape in ((3, 7, 8), (8,), (8,))]

    def run():
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in arrays)
        y = F.layer_norm(x, 8, w, b)
        y.backward(minigrad.tensor(np.cos(np.arange(168.0)).reshape(3, 7, 8)))
        return [y.numpy(), *(t.grad.numpy() for t in (x, w, b))]

    workers(1)
    unblocked = run()
    monkeypatch.setattr(layer_norm_module, "BLOCK_BYTES", 3 * 8 * 8)  # blocks of 3 rows
    blocked = []
    for n in (1, 2, 3):
        workers(n)
        blocked.append(run())
    for result in blocked[1:]:  # the blocks' sums are added in row order, whoever ran them
        for a, b in zip(result, blocked[0], strict=True):
            np.testing.assert_array_equal(a, b)
    for i, (a, b) in enumerate(zip(blocked[0], unblocked, strict=True)):
        if i < 2:  # y and dx: every row computed alike
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_large_matrix_products_split_by_rows_equal_one_product(workers, monkeypatch):
    monkeypatch.setattr(cpu, "split_product_work", 1)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((301, 67)).astype("float32")
    b = rng.standard_normal((67, 45)).astype("float32")
    exact = a.astype("float64") @ b.astype("float64")
    for n in (1, 2, 3):  # float32 rounding differs with the parts' BLAS paths, not more
        workers(n)
        for b_layout in (b, np.asfortranarray(b)):
            product = cpu.matmul(a, b_layout)
            assert product.dtype == np.float32
            np.testing.assert_allclose(product, exact, rtol=1e-5, atol=2e-5)


def test_parallel_map_inside_a_part_runs_in_that_part(workers):
    workers(2)
    inner = cpu.parallel_map(lambda i: cpu.parallel_map(lambda j: (i, j), range(3)), range(2))
    assert inner == [[(i, j) for j in range(3)] for i in range(2)]  # no deadlock either


def test_split_product_adds_the_bias_in_each_part(workers, monkeypatch):
    monkeypatch.setattr(cpu, "split_product_work", 0)  # split even a tiny product
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    bias = rng.standard_normal(3)
    workers(1)
    whole = cpu.matmul(a, b, bias)
    workers(3)
    np.testing.assert_array_equal(cpu.matmul(a, b, bias), whole)
    np.testing.assert_allclose(whole, a @ b + bias, rtol=1e-12)
