"""Stacks of matrix products on a multi-core CPU: one BLAS thread per product, the stack
shared across cores.

NumPy computes a stack of products, (..., M, K) @ (..., K, N), as one BLAS call per
matrix. A multithreaded OpenBLAS wakes and synchronises its threads in every call; for
the small products of attention (48 products of 256 x 64 x 256 in one call of a small
GPT) that costs more than the threads save, and on a busy machine, where a thread can
wait a whole scheduler slice for its partner, it made the call 4x slower than one thread.
`StackedMatmul` instead sets OpenBLAS to one thread for the call and splits the stack
across a pool of Python threads (NumPy releases the GIL inside matmul), so the cores
meet once per stack, as PyTorch's batched matmul does.

OpenBLAS's thread count is process-wide: it is 1 only while a stack runs, from the
thread that runs it. With another BLAS (MKL, Accelerate), `find_openblas_threads` finds
nothing and NumPy's matmul runs as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from concurrent.futures import ThreadPoolExecutor

# Exported names of (get, set) thread count: plain OpenBLAS, then the scipy-openblas
# builds that NumPy's wheels bundle (64-bit integer interface, then 32-bit).
_SYMBOLS = (("openblas_get_num_threads", "openblas_set_num_threads"),
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"))


def find_openblas_threads(library_dirs: list[str]):
    """(get_num_threads, set_num_threads) of the first OpenBLAS in library_dirs or on the
    system, or None."""
    paths = [p for d in library_dirs for p in sorted(glob.glob(os.path.join(d, "*openblas*")))]
    system = ctypes.util.find_library("openblas")
    for path in paths + ([system] if system else []):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            if hasattr(library, get_name) and hasattr(library, set_name):
                getter, setter = getattr(library, get_name), getattr(library, set_name)
                getter.argtypes, getter.restype = [], ctypes.c_int
                setter.argtypes, setter.restype = [ctypes.c_int], None
                return getter, setter
    return None


class StackedMatmul:
    """``matmul(a, b, out=out)`` for stacks with equal leading dims, split along the first
    dim into as many chunks as BLAS has threads, each chunk run with one BLAS thread."""

    def __init__(self, matmul, blas_threads):
        self.matmul = matmul
        self.get_threads, self.set_threads = blas_threads
        self._pool = self._pool_pid = None  # started on first use, again in a forked child

    def __call__(self, a, b, out):
        threads = self.get_threads()
        chunks = min(threads, a.shape[0])
        if chunks == 1:
            return self.matmul(a, b, out=out)
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="stacked_matmul")
            self._pool_pid = os.getpid()
        bounds = [a.shape[0] * i // chunks for i in range(chunks + 1)]
        self.set_threads(1)
        try:
            pending = [self._pool.submit(self.matmul, a[lo:hi], b[lo:hi], out=out[lo:hi])
                       for lo, hi in zip(bounds[1:-1], bounds[2:])]
            self.matmul(a[:bounds[1]], b[:bounds[1]], out=out[:bounds[1]])
            for job in pending:
                job.result()
        finally:
            self.set_threads(threads)
        return out
