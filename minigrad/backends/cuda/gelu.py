"""F.gelu on the GPU (gelu.cu): elementwise on any shape, exact (erf) or tanh.

Saves x only; the backward recomputes Phi(x) (or the tanh term) from it. The constants
are compiled in as defines from `minigrad.nn.functional.gelu`, their one copy.
"""

from __future__ import annotations

from minigrad.backends.cuda.compile import Kernel, c_int, c_long, ceil_div, compute_dtype, prepare
from minigrad.nn.functional.gelu import GELU_CUBIC, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI

THREADS = 256
MAX_BLOCKS = 65536  # grid-stride loops cover the rest


class GeluKernel(Kernel):
    source = "gelu.cu"
    kernels = ("gelu_forward", "gelu_backward")  # the functions it launches
    defines = {"INV_SQRT_2": repr(INV_SQRT_2), "INV_SQRT_2PI": repr(INV_SQRT_2PI),
               "SQRT_2_OVER_PI": repr(SQRT_2_OVER_PI), "GELU_CUBIC": repr(GELU_CUBIC)}

    def supports(self, fn, x) -> bool:
        return True

    def forward(self, fn, x):
        fn.save_for_backward(x)
        return self._launch("gelu_forward", fn.approximate, x)

    def backward(self, fn, g):
        (x,) = fn.saved
        return self._launch("gelu_backward", fn.approximate, x, g)

    def _launch(self, name: str, approximate: str, x, *grad):
        """y = gelu(x) (no grad) or dx = g gelu'(x), shaped and typed like x."""
        dtype = compute_dtype(x)
        arrays = [prepare(self.xp, a, dtype) for a in (x, *grad)]
        out = self.xp.empty(x.shape, dtype=dtype)
        n = out.size
        if n:
            self.function(name, dtype)(
                (min(MAX_BLOCKS, ceil_div(n, THREADS)),), (THREADS,),
                (*arrays, out, c_long(n), c_int(approximate == "tanh")))
        return out.astype(x.dtype, copy=False)
