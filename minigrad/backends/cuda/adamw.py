"""`Device.adamw_update` on the GPU: one launch over a flat parameter buffer (adamw.cu),
updating param and the moments in place.

The kernel runs the same formula as `minigrad.backends.device.adamw_step` on
contiguous float32/float64 buffers; the CuPy device runs that array-API formula itself
for anything else (`supports` is False).
"""

from __future__ import annotations

import math

import numpy as np

from minigrad.backends.cuda.compile import NATIVE, Kernel, c_long, c_scalar, ceil_div, prepare

THREADS = 256
MAX_BLOCKS = 65536  # grid-stride loop covers the rest


class AdamWKernel(Kernel):
    source = "adamw.cu"
    kernels = ("adamw_update",)  # the functions it launches

    def supports(self, param, exp_avg, exp_avg_sq) -> bool:
        """Whether the kernel can update these arrays in place as flat memory."""
        return (np.dtype(param.dtype).name in NATIVE
                and all(a.flags.c_contiguous and a.dtype == param.dtype
                        for a in (param, exp_avg, exp_avg_sq)))

    def __call__(self, param, grad, exp_avg, exp_avg_sq, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, step: int) -> None:
        n = param.size
        if not n:
            return
        dtype = np.dtype(param.dtype).name
        hyper = (lr, beta1, beta2, eps, weight_decay, lr / (1 - beta1 ** step),
                 math.sqrt(1 - beta2 ** step))
        self.function("adamw_update", dtype)(
            (min(MAX_BLOCKS, ceil_div(n, THREADS)),), (THREADS,),
            (param, prepare(self.xp, grad, dtype), exp_avg, exp_avg_sq, c_long(n),
             *(c_scalar(h, dtype) for h in hyper)))
