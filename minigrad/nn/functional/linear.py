"""linear(x, weight, bias): x @ weight^T + bias over any leading shape, as one node.

x (..., in) is viewed as a matrix (N, in), so every product is one 2-D GEMM:

    forward:  y = x W^T + b            (N, in) @ (in, out)
    backward: dx = g W                 (N, out) @ (out, in)
              dW = g^T x               (out, N) @ (N, in)
              db = sum over rows of g    ones (N,) @ g (a GEMV)

W^T is a transposed view, never a copy: BLAS reads it as is. dx and (dW, db) are
independent: on a device with several workers (`Device.parallel_map`) they run at once.
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.nn.functional._reduce import sum_rows
from minigrad.tensor import Tensor

# Multiply-adds of one backward GEMM (N in out) from which the two run side by side, each
# on one BLAS thread (below it OpenBLAS's own threads are faster: 2^25 is a T-config GEMM).
PARALLEL_WORK = 1 << 27


class Linear(FusedFunction):
    name = "linear"

    def array_forward(self, x, weight, *bias):
        xp = self.xp
        n_out, n_in = weight.shape
        x2 = xp.reshape(x, (math.prod(x.shape[:-1]), n_in))  # (N, in)
        # (N, out); the bias added by the device (the CPU: inside each worker's rows)
        y = self.device.matmul(x2, xp.matrix_transpose(weight), bias[0] if bias else None)
        self.save_for_backward(x2, weight)
        return xp.reshape(y, x.shape[:-1] + (n_out,))

    def array_backward(self, g):
        xp, need = self.xp, self.needs_input_grad
        x2, weight = self.saved
        g2 = xp.reshape(g, (x2.shape[0], weight.shape[0]))  # (N, out)

        def input_grad():
            if not need[0]:
                return None
            return xp.reshape(xp.matmul(g2, weight), g.shape[:-1] + (x2.shape[1],))

        def param_grads():
            dw = xp.matmul(xp.matrix_transpose(g2), x2) if need[1] else None
            return dw, sum_rows(self.device, g2) if len(need) == 3 and need[2] else None

        # The two GEMMs are independent: with several workers they run side by side, each
        # on one BLAS thread (no thread synchronisation inside a small GEMM).
        tasks = [input_grad, param_grads]
        if math.prod(g2.shape) * x2.shape[1] >= PARALLEL_WORK:
            dx, (dw, db) = self.device.parallel_map(lambda task: task(), tasks)
        else:
            dx, (dw, db) = (task() for task in tasks)
        return (dx, dw) if len(need) == 2 else (dx, dw, db)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with weight (out, in), bias (out,), x (..., in)."""
    _check_arguments("linear", x, weight, bias)
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)


def linear_composite(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The same from primitive ops: a broadcasting matmul with the transposed weight."""
    _check_arguments("linear_composite", x, weight, bias)
    y = x @ weight.T
    return y if bias is None else y + bias


def _check_arguments(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    check_floating(op, x=x, weight=weight, bias=bias)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input {x.shape} and weight {weight.shape}: expected input "
                         "(..., in) and weight (out, in)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
