"""Host memory for the NumPy device: freed blocks stay mapped, ready for the next step.

A training step allocates the same large arrays every step (activations, their
gradients, the kernels' outputs). glibc's malloc serves each block above its mmap
threshold (128 KB, adapting up to 32 MB) with a fresh `mmap` and unmaps it on free, so
every step touches gigabytes of new pages, and each 4 KB page costs a page fault and the
kernel zeroing it. Measured on a 6-layer, width-384 GPT at batch 16 (one BLAS thread,
CPU time per op): 51,000 page faults and 0.4 to 1.3 s of system time per step; GELU's
forward took 4x, LayerNorm's 3x, the residual adds 8x the CPU time they take in
memory already mapped, and the whole step 1.24x.

`reuse_freed_memory()` sets glibc's malloc to serve every block from its heap
(`M_MMAP_MAX` = 0), to keep the heap's free top instead of returning it to the kernel
(`M_TRIM_THRESHOLD` at its maximum), and to give every thread that one heap
(`M_ARENA_MAX` = 1: a worker thread's own arena is a set of 64 MB mmap'd heaps that glibc
shrinks as blocks are freed, so the device's worker threads faulted again: 62,000 page
faults and 2.7 s of system time per S-config step at batch 64 without it), so each step's
arrays land in pages the previous step already mapped. The process keeps its peak heap
until it exits (the peak itself does not grow: equal-sized blocks are reused).
Process-wide, as the C library's settings are; with another C library (macOS, musl) it
does nothing. An arena that a thread made before the device was (pytest-xdist's receiver
thread makes one) stays, and glibc may still hand it to new threads.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
M_ARENA_MAX = -8
_INT_MAX = 2**31 - 1


def reuse_freed_memory() -> bool:
    """Keep freed blocks in malloc's heap for reuse (see the module docstring); True if
    the C library is glibc and took the settings."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl's mallopt ignores these)
    except (OSError, AttributeError):
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return (bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX))
            and bool(libc.mallopt(M_ARENA_MAX, 1)))
