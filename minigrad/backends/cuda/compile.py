"""What every kernel wrapper shares: reading and compiling the .cu sources, argument
types, launch shapes, and the `Kernel` base class.

A kernel file may `#include "common.cuh"`; the loader pastes the header in its place,
so the compiler (NVRTC through CuPy) gets one self-contained string and CuPy's on-disk
cache, keyed by that string, sees every change to the header too. Variants of a file
differ by `-D` defines (element type, tile sizes, constants); each variant is compiled
on first use and kept for the life of the process.

Kernel arguments must carry exact C types: CuPy passes a Python float as a double and
a Python int as a 64-bit integer, which a `float` or `int` parameter would misread.
So every scalar goes through `c_scalar` / `c_int` / `c_long`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

SOURCE_DIR = Path(__file__).parent
_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)


def read_source(name: str) -> str:
    """The text of minigrad/backends/cuda/<name> with its local includes pasted in."""
    text = (SOURCE_DIR / name).read_text()
    return _INCLUDE.sub(lambda match: read_source(match.group(1)), text)


@functools.cache
def kernel_names(name: str) -> tuple[str, ...]:
    """The `extern "C" __global__` functions a source file defines."""
    return tuple(re.findall(r'extern "C" __global__ void (\w+)\(', read_source(name)))


class KernelLibrary:
    """Compiled variants of the kernel sources on one host.

    `host.compile(source, options)` returns a module whose `get_function(name)` is a
    kernel callable as ``kernel(grid, block, args)`` (CuPy's RawModule / RawKernel, or
    the CPU emulator the tests use).
    """

    def __init__(self, host):
        self.host = host
        self.xp = host.xp
        self._modules: dict = {}

    def function(self, source: str, name: str, **defines):
        """Kernel `name` of minigrad/backends/cuda/<source>, compiled with `defines`."""
        if name not in kernel_names(source):
            raise ValueError(f"no kernel {name!r} in {source} (it defines "
                             f"{', '.join(kernel_names(source))})")
        key = (source, tuple(sorted(defines.items())))
        module = self._modules.get(key)
        if module is None:
            options = tuple(f"-D{k}={v}" for k, v in sorted(defines.items()))
            module = self._modules[key] = self.host.compile(read_source(source), options)
        return module.get_function(name)


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
    defines: dict = {}  # compiled into every variant (constants the source takes as -D)

    def __init__(self, library: KernelLibrary):
        self.library = library
        self.xp = library.xp

    def function(self, name: str, dtype: str | None = None, **defines):
        """The compiled `name` for scalar type `dtype` (#define SCALAR_T) and other #defines."""
        if dtype is not None:
            defines["SCALAR_T"] = scalar_t(dtype)
        return self.library.function(self.source, name, **self.defines, **defines)
