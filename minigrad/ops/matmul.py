"""Matrix product with batch broadcasting and the 1-D cases of `@`.

For out = a @ b:  da = g @ b^T,  db = a^T @ g, each summed over broadcast batch dims.
A 1-D operand is treated as a row (left) or column (right) vector whose added dim is
dropped from the result, so its gradient is computed in 2-D and then reshaped back.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops._util import as_tensor, cast_to, grad_like, sum_to
from minigrad.tensor import Tensor


class MatMul(Function):
    name = "matmul"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.device.matmul(a, b)

    def backward(self, g):
        xp = self.xp
        a, b = self.saved
        # Put back the dims `@` dropped for 1-D operands: N = 1 at the end, M = 1 before it.
        if b.ndim == 1:
            g = xp.expand_dims(g, axis=g.ndim)
        if a.ndim == 1:
            g = xp.expand_dims(g, axis=g.ndim - 1)
        a2 = xp.reshape(a, (1, a.shape[0])) if a.ndim == 1 else a  # (.., M, K)
        b2 = xp.reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b  # (.., K, N)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = grad_like(xp, self.device.matmul(g, xp.matrix_transpose(b2)), a2.shape, a.dtype)
            ga = xp.reshape(ga, a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # Summing (.., K, M) @ (.., M, N) over the batch is one (K, B*M) @ (B*M, N) GEMM.
                k, n = b2.shape
                gb = xp.matmul(xp.matrix_transpose(xp.reshape(a2, (-1, k))),
                               xp.reshape(g, (-1, n)))
            else:
                gb = sum_to(xp, self.device.matmul(xp.matrix_transpose(a2), g), b2.shape)
            gb = xp.reshape(cast_to(xp, gb, b.dtype), b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    if not isinstance(a, Tensor):
        a = as_tensor(a, b)
    b = as_tensor(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: operands must have at least 1 dim")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {k_a} and {k_b} "
                         "differ")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    for x, y in zip(reversed(batch_a), reversed(batch_b)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dims {batch_a} and "
                             f"{batch_b} do not broadcast")
    return MatMul()(a, b)
