"""This machine's measured matmul throughput: the peak that model FLOPs utilisation
(MFU) and the scaling plan are measured against.

The peak is what the backend's matrix product reaches on square float32 matrices (best
of several timed products, after a warm-up), a practical ceiling for a training step,
which is mostly matrix products. Measured once per device and dtype per process.
"""

from __future__ import annotations

import time

import minigrad

_PEAKS: dict = {}


def matmul_peak_flops(device="cpu", dtype="float32", size: int = 512,
                      min_seconds: float = 0.25) -> float:
    """FLOP/s of a (size x size) @ (size x size) product on `device` (2 size^3 FLOPs)."""
    device = minigrad.get_device(device)
    key = (device.name, dtype, size)
    if key not in _PEAKS:
        gen = minigrad.Generator(0, device)
        a = minigrad.randn(size, size, dtype=dtype, generator=gen)
        b = minigrad.randn(size, size, dtype=dtype, generator=gen)
        best = float("inf")
        with minigrad.no_grad():
            _ = a @ b  # warm-up: thread pools, caches, kernel compilation
            device.synchronize()
            started = time.perf_counter()
            while time.perf_counter() - started < min_seconds:
                t0 = time.perf_counter()
                _ = a @ b
                device.synchronize()
                best = min(best, time.perf_counter() - t0)
        _PEAKS[key] = 2 * size**3 / best
    return _PEAKS[key]
