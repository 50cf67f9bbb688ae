"""AdamW in one launch over a flat parameter buffer (adamw.cu), updating in place.

The call convention is the optimizer's (`minigrad.optim.adam`):
``kernel(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step)``
with equal-shaped arrays; param and the moments change in place. Arrays the kernel
cannot update in place as flat memory (not contiguous, or not float32/float64) take the
array-API twin (`minigrad.cuda.reference.adamw`).
"""

from __future__ import annotations

import math

import numpy as np

from minigrad.cuda.launch import NATIVE, Kernel, c_long, c_scalar, ceil_div, prepare

THREADS = 256
MAX_BLOCKS = 65536  # grid-stride loop covers the rest


class AdamWKernel(Kernel):
    source = "adamw.cu"
    kernels = ("adamw_update",)  # the functions it launches

    def __init__(self, library, fallback):
        super().__init__(library)
        self.fallback = fallback

    def __call__(self, param, grad, exp_avg, exp_avg_sq, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, step: int) -> None:
        dtype = np.dtype(param.dtype).name
        in_place = (dtype in NATIVE and all(a.flags.c_contiguous and a.dtype == param.dtype
                                            for a in (param, exp_avg, exp_avg_sq)))
        if not in_place:
            self.fallback(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                          weight_decay, step)
            return
        n = param.size
        if not n:
            return
        hyper = (lr, beta1, beta2, eps, weight_decay, lr / (1 - beta1 ** step),
                 math.sqrt(1 - beta2 ** step))
        self.function("adamw_update", dtype)(
            (min(MAX_BLOCKS, ceil_div(n, THREADS)),), (THREADS,),
            (param, prepare(self.library.xp, grad, dtype), exp_avg, exp_avg_sq, c_long(n),
             *(c_scalar(h, dtype) for h in hyper)))
