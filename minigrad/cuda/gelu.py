"""Fused GELU forward and backward (gelu.cu), elementwise on any shape."""

from __future__ import annotations

from minigrad.cuda.launch import Kernel, c_int, c_long, ceil_div, compute_dtype, prepare

THREADS = 256
MAX_BLOCKS = 65536  # grid-stride loops cover the rest


def _approximate_flag(approximate: str) -> int:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return int(approximate == "tanh")


class GeluKernel(Kernel):
    source = "gelu.cu"
    kernels = ("gelu_forward", "gelu_backward")  # the functions it launches

    def _launch(self, name: str, dtype: str, n: int, args: tuple) -> None:
        if n:
            blocks = min(MAX_BLOCKS, ceil_div(n, THREADS))
            self.function(name, dtype)(
                (blocks,), (THREADS,), args)

    def forward(self, x, approximate: str = "none"):
        xp = self.library.xp
        flag = _approximate_flag(approximate)
        dtype = compute_dtype(x)
        xc = prepare(xp, x, dtype)
        y = xp.empty(xc.shape, dtype=dtype)
        self._launch("gelu_forward", dtype, xc.size, (xc, y, c_long(xc.size), c_int(flag)))
        return y.astype(x.dtype, copy=False)

    def backward(self, x, dy, approximate: str = "none"):
        xp = self.library.xp
        flag = _approximate_flag(approximate)
        dtype = compute_dtype(x)
        xc, dyc = prepare(xp, x, dtype), prepare(xp, dy, dtype)
        dx = xp.empty(xc.shape, dtype=dtype)
        self._launch("gelu_backward", dtype, xc.size,
                     (xc, dyc, dx, c_long(xc.size), c_int(flag)))
        return dx.astype(x.dtype, copy=False)
