"""Reading the .cu sources and compiling each variant once.

A kernel file may `#include "common.cuh"`; the loader pastes the header in its place,
so the compiler (NVRTC through CuPy) gets one self-contained string and CuPy's on-disk
cache, keyed by that string, sees every change to the header too. Variants of a file
differ by `-D` defines (element type, tile sizes); each variant is compiled on first
use and kept for the life of the process.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

SOURCE_DIR = Path(__file__).parent
_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)


def read_source(name: str) -> str:
    """The text of minigrad/cuda/<name> with its local includes pasted in."""
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
        """Kernel `name` of minigrad/cuda/<source>, compiled with `defines`."""
        if name not in kernel_names(source):
            raise ValueError(f"no kernel {name!r} in {source} (it defines "
                             f"{', '.join(kernel_names(source))})")
        key = (source, tuple(sorted(defines.items())))
        module = self._modules.get(key)
        if module is None:
            options = tuple(f"-D{k}={v}" for k, v in sorted(defines.items()))
            module = self._modules[key] = self.host.compile(read_source(source), options)
        return module.get_function(name)
