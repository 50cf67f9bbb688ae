"""What the GPU tests share: whether a GPU is usable (and why not), the marks that skip
them with that reason, and a bridge that lets NumPy-based kernel tests drive the CUDA
kernels."""

from __future__ import annotations

import numpy as np
import pytest


def why_no_gpu() -> str | None:
    """None when CuPy imports and sees a GPU; otherwise the reason, for the skip message."""
    try:
        import cupy
    except ImportError:
        return ("CuPy is not installed: pip install 'minigrad-llm[cuda12]' "
                "(or 'minigrad-llm[cuda13]') on a machine with an NVIDIA GPU")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return f"CuPy finds no usable NVIDIA GPU ({exc})"
    return None if count else "no NVIDIA GPU visible"


NO_GPU = why_no_gpu()
GPU_MARKS = [pytest.mark.gpu, pytest.mark.skipif(NO_GPU is not None, reason=str(NO_GPU))]


class HostBridge:
    """A kernel (or kernel set entry) called with NumPy arrays: arguments go to the GPU,
    results come back as NumPy arrays, and arrays the kernel updated in place are copied
    back into the caller's NumPy arrays."""

    def __init__(self, target):
        self.target = target

    def __getattr__(self, name):
        value = getattr(self.target, name)
        return _bridged(value) if callable(value) else value

    def __call__(self, *args, **kwargs):
        return _bridged(self.target)(*args, **kwargs)


def _bridged(fn):
    import cupy

    def call(*args, **kwargs):
        moved = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        result = fn(*moved, **kwargs)
        for original, device_array in zip(args, moved):
            if isinstance(original, np.ndarray) and original.flags.writeable:
                original[...] = cupy.asnumpy(device_array)  # in-place updates (AdamW)
        return _to_numpy(result)

    return call


def _to_numpy(value):
    import cupy

    if isinstance(value, cupy.ndarray):
        return cupy.asnumpy(value)
    if isinstance(value, tuple):
        return tuple(_to_numpy(v) for v in value)
    return value
