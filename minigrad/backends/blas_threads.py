"""Stacks of small matrix products on a multi-core CPU: one BLAS thread for the stack.

NumPy computes a stack of products, (..., M, K) @ (..., K, N), as one BLAS call per
matrix, and a multithreaded OpenBLAS wakes and synchronises its threads in every call.
For the small products of attention (48 products of 256 x 64 x 256 per call in a small
GPT) the threads gain little even on an idle machine, and on a busy one, where a thread
can wait a whole scheduler slice for its partner, the call ran 4x slower than on one
thread and the training step 2x slower than PyTorch's. So the CPU backend runs stacks
of small products with OpenBLAS set to one thread for the duration of the call
(`OpenBlasThreads.one_thread`); on an idle 2-core machine that costs about 4% of a
small GPT's training step, under load it saved a third of it.

OpenBLAS's thread count is process-wide; it is restored when the last `one_thread` block
ends (the blocks nest and may overlap across threads: the device's worker threads run
attention's parts inside one). With another BLAS (MKL, Accelerate),
`find_openblas_threads` finds nothing and NumPy's matmul runs as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading

# Exported names of (get, set) thread count and of the kernels' name: plain OpenBLAS,
# then the scipy-openblas builds that NumPy's wheels bundle (64-bit integer interface,
# then 32-bit).
_SYMBOLS = (("openblas_get_num_threads", "openblas_set_num_threads", "openblas_get_corename"),
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_",
             "scipy_openblas_get_corename64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads",
             "scipy_openblas_get_corename"))


def find_openblas_threads(library_dirs: list[str]) -> OpenBlasThreads | None:
    """The thread control of the first OpenBLAS in library_dirs or on the system, or None."""
    paths = [p for d in library_dirs for p in sorted(glob.glob(os.path.join(d, "*openblas*")))]
    system = ctypes.util.find_library("openblas")
    for path in paths + ([system] if system else []):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name, core_name in _SYMBOLS:
            if hasattr(library, get_name) and hasattr(library, set_name):
                return OpenBlasThreads(getattr(library, get_name), getattr(library, set_name),
                                       getattr(library, core_name, None))
    return None


class OpenBlasThreads:
    """OpenBLAS's process-wide thread count, and the name of the kernels it runs
    (`kernels`: "Haswell", "SkylakeX", ...: chosen for the CPU when OpenBLAS loads, or by
    the OPENBLAS_CORETYPE environment variable; None if this build does not say)."""

    def __init__(self, getter, setter, core_name=None):
        getter.argtypes, getter.restype = [], ctypes.c_int
        setter.argtypes, setter.restype = [ctypes.c_int], None
        self.count, self._set = getter, setter
        self.kernels = None
        if core_name is not None:
            core_name.argtypes, core_name.restype = [], ctypes.c_char_p
            self.kernels = core_name().decode("ascii", "replace")
        self._lock = threading.Lock()
        self._depth = 0  # one_thread blocks open, in all threads
        self._saved = 0  # the thread count to restore when the last one closes
        self._one_thread = _OneThread(self)

    def one_thread(self):
        """A context manager: BLAS calls inside the block run on their calling thread
        alone. (One reusable object, not a generator-based context manager: a training
        step opens about a hundred of these blocks.)"""
        return self._one_thread


class _OneThread:
    """`OpenBlasThreads.one_thread`'s block; reentrant and shared by all threads (the
    count of open blocks lives in the OpenBlasThreads, under its lock)."""

    def __init__(self, threads: OpenBlasThreads):
        self.threads = threads

    def __enter__(self):
        t = self.threads
        with t._lock:
            if t._depth == 0:
                t._saved = t.count()
                t._set(1)
            t._depth += 1

    def __exit__(self, *exc):
        t = self.threads
        with t._lock:
            t._depth -= 1
            if t._depth == 0:
                t._set(t._saved)
        return False
