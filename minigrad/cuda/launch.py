"""Small helpers for the kernel wrappers: element types, scalars, launch shapes.

Kernel arguments must carry exact C types: CuPy passes a Python float as a double and
a Python int as a 64-bit integer, which a `float` or `int` parameter would misread.
So every scalar goes through `c_scalar` / `c_int` / `c_long`.
"""

from __future__ import annotations

import numpy as np

# Element types the kernels are compiled for; other float types are computed in float32.
NATIVE = {"float32": "float", "float64": "double"}


def compute_dtype(array) -> str:
    """The dtype a kernel computes `array` in: its own if native, else float32."""
    name = np.dtype(array.dtype).name
    return name if name in NATIVE else "float32"


def scalar_t(dtype: str) -> str:
    """The C element type (`-DSCALAR_T=`) for a compute dtype."""
    return NATIVE[dtype]


def prepare(xp, array, dtype: str):
    """`array` as a C-contiguous array of `dtype` (no copy when it already is one)."""
    if np.dtype(array.dtype).name != dtype:
        array = array.astype(dtype)
    return xp.ascontiguousarray(array)


def c_scalar(value, dtype: str):
    return np.dtype(dtype).type(value)


def c_int(value) -> np.int32:
    return np.int32(value)


def c_long(value) -> np.int64:
    return np.int64(value)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def row_threads(length: int, per_thread: int = 4, most: int = 512) -> int:
    """Threads for one block per row: about `per_thread` elements each, a multiple of 32."""
    return min(most, 32 * max(1, ceil_div(length, 32 * per_thread)))


class Kernel:
    """Base of the kernel wrappers: one .cu source whose functions compile per variant."""

    source = ""
    kernels = ()  # the functions it launches

    def __init__(self, library):
        self.library = library

    def function(self, name: str, dtype: str | None = None, **defines):
        """The compiled `name` for scalar type `dtype` (#define SCALAR_T) and other #defines."""
        if dtype is not None:
            defines["SCALAR_T"] = scalar_t(dtype)
        return self.library.function(self.source, name, **defines)
