"""Random numbers drawn on the device with Philox4x32-10 (philox.cu).

A draw is a pure function of (seed, offset, shape); each call returns the new offset,
advanced past the counters it used, so a generator's state is just (seed, offset).
"""

from __future__ import annotations

import math

import numpy as np

from minigrad.backends.cuda.compile import Kernel, c_long, ceil_div

THREADS = 256
MAX_RANGE = 2 ** 32


def values_per_counter(kind: str, dtype: str) -> int:
    """Outputs one Philox counter yields (four 32-bit words: one per float32 or integer,
    two per float64)."""
    return 2 if kind != "integers" and dtype == "float64" else 4


class PhiloxKernel(Kernel):
    source = "philox.cu"
    kernels = ("philox_uniform_float", "philox_uniform_double", "philox_normal_float",
               "philox_normal_double", "philox_integers")  # the functions it launches

    def _draw(self, kind: str, shape, dtype: str, seed: int, offset: int, extra=()):
        xp = self.xp
        n = math.prod(shape)
        out_dtype = "int64" if kind == "integers" else dtype
        out = xp.empty((n,), dtype=out_dtype)
        per = values_per_counter(kind, dtype)
        counters = ceil_div(n, per)
        if n:
            suffix = "" if kind == "integers" else "_double" if dtype == "float64" else "_float"
            self.function(f"philox_{kind}{suffix}")(
                (ceil_div(counters, THREADS),), (THREADS,),
                (out, c_long(n), np.uint64(seed), np.uint64(offset), *extra))
        return xp.reshape(out, tuple(shape)), offset + counters

    def uniform(self, shape, dtype: str, seed: int, offset: int):
        """Uniform in [0, 1) -> (array, new offset)."""
        draw_dtype = dtype if dtype == "float64" else "float32"
        out, offset = self._draw("uniform", shape, draw_dtype, seed, offset)
        return out.astype(dtype, copy=False), offset

    def normal(self, shape, dtype: str, seed: int, offset: int):
        """Standard normal -> (array, new offset)."""
        draw_dtype = dtype if dtype == "float64" else "float32"
        out, offset = self._draw("normal", shape, draw_dtype, seed, offset)
        return out.astype(dtype, copy=False), offset

    def integers(self, low: int, high: int, shape, dtype: str, seed: int, offset: int):
        """Uniform integers in [low, high) -> (array, new offset)."""
        span = high - low
        if not 0 < span <= MAX_RANGE:
            raise ValueError(f"randint: high - low must be in [1, 2**32], got low={low}, "
                             f"high={high}")
        out, offset = self._draw("integers", shape, "int64", seed, offset,
                                 (c_long(low), np.uint64(span)))
        return out.astype(dtype, copy=False), offset
