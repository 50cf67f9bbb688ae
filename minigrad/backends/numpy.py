"""The NumPy device, 'cpu': the reference backend and the fast path on CPUs.

NumPy is the array namespace (NumPy 2 follows the array API standard). What the device
adds: scatter-add with a fast path for embedding rows, Cody's erf (`erf.py`), random
numbers from NumPy's PCG64 generator, stacks of small matmuls and matrix-vector
products on one BLAS thread (`blas_threads.py`), the blocked CPU kernels of
`numpy_kernels.py` as its fused ops and optimizer update, and freed host memory kept
mapped for the next step's arrays (`host_memory.py`).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from minigrad.backends import numpy_kernels
from minigrad.backends.blas_threads import find_openblas_threads
from minigrad.backends.device import Device, dtype_name
from minigrad.backends.erf import erf
from minigrad.backends.host_memory import reuse_freed_memory


class HostRandom:
    """Random numbers drawn on the host by NumPy's generator, placed on the device by
    `from_host` (shared by the devices whose buffers are NumPy arrays)."""

    def generator(self, seed):
        return np.random.default_rng(seed)

    def random_normal(self, rng, shape, dtype):
        dtype = dtype_name(dtype)
        if dtype in ("float32", "float64"):
            return self.from_host(rng.standard_normal(shape, dtype=dtype))
        return self.from_host(rng.standard_normal(shape).astype(dtype))

    def random_uniform(self, rng, shape, dtype):
        dtype = dtype_name(dtype)
        if dtype in ("float32", "float64"):
            return self.from_host(rng.random(shape, dtype=dtype))
        return self.from_host(rng.random(shape).astype(dtype))

    def random_integers(self, rng, low, high, shape, dtype="int64"):
        return self.from_host(rng.integers(low, high, size=shape, dtype=dtype_name(dtype)))

    def generator_state(self, rng):
        return rng.bit_generator.state

    def set_generator_state(self, rng, state) -> None:
        rng.bit_generator.state = state


class NumpyDevice(HostRandom, Device):
    kind = "cpu"
    has_views = True
    block_bytes = 1 << 18

    # Stacks of products of up to this much work each (M N K) run on one BLAS thread:
    # attention's 256 x 64 x 256 products are 2^22.
    small_product_work = 1 << 23
    # Matrix products of at least this much work (M N K) are split among the workers.
    # Measured on 2 cores (benchmarks/RESULTS.md, 2026-12-02): a (16384, 384) @ (384, 1152)
    # product ran in 74.5 ms split in two, 74.6 ms on OpenBLAS's two threads; a
    # (768, 512) @ (512, 128) one in 0.60 ms split, 0.48 ms on OpenBLAS's threads.
    split_product_work = 1 << 27

    def __init__(self):
        super().__init__("cpu", np)
        self.fused_ops = numpy_kernels.fused_ops()
        numpy_libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        self.blas = find_openblas_threads([numpy_libs])  # None: another BLAS
        self.reuses_freed_memory = reuse_freed_memory()  # False: not glibc
        # Threads for `parallel_map`: one per core. Fused ops split only work large enough
        # to pay for the hand-off (each op's PARALLEL_WORK), so small models run as on one
        # worker, with OpenBLAS's own threads inside their products.
        self.workers = os.cpu_count() or 1
        self._pool = None  # the workers - 1 helper threads, started on first use
        self._inside = threading.local()  # .active: this thread is running a part
        if hasattr(os, "register_at_fork"):  # a forked child has none of them: start anew
            os.register_at_fork(after_in_child=lambda: setattr(self, "_pool", None))

    def asarray(self, data, dtype=None):
        return np.asarray(data, dtype=None if dtype is None else self.dtype(dtype))

    def to_host(self, array) -> np.ndarray:
        # NumPy data already lives on the host: nothing moves, nothing is counted.
        return np.asarray(array)

    def from_host(self, array: np.ndarray):
        return array

    def is_array(self, obj) -> bool:
        return isinstance(obj, np.ndarray)

    def matmul(self, a, b, bias=None):
        """Stacks of small products, and products with a vector (a GEMV: one pass over the
        matrix, memory-bound, where a second thread gains little and stalls under load),
        run on one BLAS thread (see `blas_threads`). A large matrix product is split by
        rows among the workers, each part on one BLAS thread: as fast as OpenBLAS's own
        threads, and it leaves none of them spinning on a core that the next op's
        workers need; each part adds the bias to its own rows."""
        if (a.ndim == b.ndim == 2 and self.workers > 1
                and a.shape[0] * a.shape[1] * b.shape[1] >= self.split_product_work):
            out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))

            def rows_product(rows):
                np.matmul(a[rows], b, out=out[rows])
                if bias is not None:
                    out[rows] += bias

            bounds = [a.shape[0] * i // self.workers for i in range(self.workers + 1)]
            self.parallel_map(rows_product,
                              [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])])
            return out
        one_thread = self.blas is not None and (
            min(a.ndim, b.ndim) == 1 or max(a.ndim, b.ndim) >= 3
            and a.shape[-2] * a.shape[-1] * b.shape[-1] <= self.small_product_work)
        with self.blas.one_thread() if one_thread else nullcontext():
            out = np.matmul(a, b)
        if bias is not None:
            out += bias
        return out

    def sums_of_squares(self, arrays):
        """Dot products on one BLAS thread, as `matmul` runs a product with a vector, set
        once for the list."""
        flat = [a.reshape(-1) for a in arrays]
        with self.blas.one_thread() if self.blas is not None else nullcontext():
            return np.stack([np.dot(f, f) for f in flat])

    def parallel_map(self, fn, items) -> list:
        """fn on each item, the first on the calling thread and the others on helper
        threads (NumPy's ufuncs and BLAS release the GIL), with BLAS on one thread per
        caller meanwhile, so the cores are not oversubscribed. Inside a part (a part's
        own product, say) it runs sequentially: the workers are busy already."""
        items = list(items)
        if len(items) < 2 or self.workers < 2 or getattr(self._inside, "active", False):
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="minigrad",
                                            initializer=self._mark_inside)
        with self.blas.one_thread() if self.blas is not None else nullcontext():
            futures = [self._pool.submit(fn, item) for item in items[1:]]
            self._inside.active = True
            try:
                first = fn(items[0])
            finally:
                self._inside.active = False
                rest = [f.result() for f in futures]  # all finish before BLAS is restored
        return [first, *rest]

    def _mark_inside(self) -> None:
        self._inside.active = True  # a helper thread only ever runs parts

    def index_add(self, target, key, values) -> None:
        index_add(target, key, values)

    def check_indices(self, indices, size: int, op: str) -> None:
        check_indices(indices, size, op)

    def erf(self, x):
        return erf(x)

    def adamw_update(self, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                     weight_decay, step) -> None:
        numpy_kernels.adamw_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                                   weight_decay, step)


def index_add(target: np.ndarray, key, values: np.ndarray) -> None:
    """np.add.at, with one special case: whole rows picked by one integer array (the
    backward of an embedding lookup) are added through a flat view of the target, which
    NumPy's add.at does about 5x faster than a row-by-row scatter."""
    rows = (isinstance(key, np.ndarray) and key.dtype.kind in "iu" and target.ndim > 1
            and target.flags.c_contiguous and values.shape == key.shape + target.shape[1:])
    if not rows:
        np.add.at(target, key, values)
        return
    row_size = math.prod(target.shape[1:])
    # Row r's elements sit at r * row_size + 0 .. row_size - 1 (negative rows wrap the
    # same way on the flat view as on the rows).
    flat_key = (key.astype(np.intp).reshape(-1, 1) * row_size + np.arange(row_size)).reshape(-1)
    np.add.at(target.reshape(-1), flat_key, values.reshape(-1))


def check_indices(indices: np.ndarray, size: int, op: str) -> None:
    """IndexError naming `op` for an index outside [0, size) of a NumPy array."""
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise IndexError(f"{op}: index {bad} is out of range for size {size} "
                         f"(valid: 0 to {size - 1})")
