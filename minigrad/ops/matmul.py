"""Matrix product with batch broadcasting and the 1-D cases of `@`.

For out = a @ b:  da = g @ b^T,  db = a^T @ g, each summed over broadcast batch dims.
A 1-D operand is treated as a row (left) or column (right) vector whose added dim is
dropped from the result, so its gradient is computed in 2-D and then reshaped back.
"""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.backends import dtype_name
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
                # (explicit row counts: a -1 is ambiguous when K or N is 0)
                k, n = b2.shape
                rows = math.prod(a2.shape[:-1])
                gb = xp.matmul(xp.matrix_transpose(xp.reshape(a2, (rows, k))),
                               xp.reshape(g, (rows, n)))
            else:
                gb = sum_to(xp, self.device.matmul(xp.matrix_transpose(a2), g), b2.shape)
            gb = xp.reshape(cast_to(xp, gb, b.dtype), b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    if not isinstance(a, Tensor):
        a = as_tensor(a, b)
    b = as_tensor(b, a)
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: {a.shape} {dtype_name(a.dtype)} @ {b.shape} "
                        f"{dtype_name(b.dtype)}: both operands need the same dtype (as in "
                        "PyTorch); cast one with .to(dtype) or .type_as(other)")
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


def outer(a: Tensor, b: Tensor) -> Tensor:
    """The outer product of two 1-D tensors: (n,) x (m,) -> (n, m)."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: needs two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return a.reshape((a.shape[0], 1)) * b.reshape((1, b.shape[0]))


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over letters, as torch.einsum, for the contractions attention
    and linear layers use ("bhqd,bhkd->bhqk", "bij,jk->bik", "i,j->ij", "ii" is not
    supported: no letter may repeat within one operand, and no "...").

    Built from permute, reshape, sum and matmul (each with its own backward): operands
    are contracted pairwise, left to right, each pair as one batched matmul over the
    letters both share."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    inputs, output = _parse_einsum(equation, operands)
    result, letters = operands[0], inputs[0]
    for i in range(1, len(operands)):
        later = set(output).union(*inputs[i + 1:])
        result, letters = _contract(result, letters, operands[i], inputs[i], later)
    result, letters = _sum_letters(result, letters, set(output))
    return result.permute(tuple(letters.index(c) for c in output))


def _parse_einsum(equation: str, operands) -> tuple[list, str]:
    equation = equation.replace(" ", "")
    if "..." in equation:
        raise ValueError(f"einsum: '...' is not supported ({equation!r})")
    lhs, arrow, output = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(inputs)} operands, got "
                         f"{len(operands)}")
    sizes: dict = {}
    for letters, t in zip(inputs, operands):
        if not letters.isalpha() and letters:
            raise ValueError(f"einsum: operand subscripts must be letters, got {letters!r}")
        if len(set(letters)) != len(letters):
            raise ValueError(f"einsum: a letter repeats within {letters!r} (diagonals are not "
                             "supported)")
        if len(letters) != t.ndim:
            raise ValueError(f"einsum: {letters!r} names {len(letters)} dims of a tensor of "
                             f"shape {t.shape}")
        for c, n in zip(letters, t.shape):
            seen = sizes.get(c)
            if seen is None or seen == 1:
                sizes[c] = n
            elif n not in (1, seen):
                raise ValueError(f"einsum: letter {c!r} has sizes {seen} and {n}")
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        output = "".join(sorted(c for c in sizes if lhs.count(c) == 1))
    if len(set(output)) != len(output) or any(c not in sizes for c in output):
        raise ValueError(f"einsum: output {output!r} must name distinct input letters")
    return inputs, output


def _sum_letters(t: Tensor, letters: str, keep: set) -> tuple[Tensor, str]:
    """Sum over the dims whose letter is not in `keep`."""
    drop = tuple(i for i, c in enumerate(letters) if c not in keep)
    if drop:
        t = t.sum(dim=drop)
        letters = "".join(c for c in letters if c in keep)
    return t, letters


def _contract(a: Tensor, la: str, b: Tensor, lb: str, later: set) -> tuple[Tensor, str]:
    """a (letters la) with b (lb) -> the product over shared letters not in `later`."""
    a, la = _sum_letters(a, la, later | set(lb))
    b, lb = _sum_letters(b, lb, later | set(la))
    batch = [c for c in la if c in lb and c in later]
    summed = [c for c in la if c in lb and c not in later]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    a = a.permute(tuple(la.index(c) for c in batch + left + summed))
    b = b.permute(tuple(lb.index(c) for c in batch + summed + right))
    nb = len(batch)
    left_shape, right_shape = a.shape[nb:nb + len(left)], b.shape[nb + len(summed):]
    k = math.prod(a.shape[nb + len(left):])
    a = a.reshape(a.shape[:nb] + (math.prod(left_shape), k))
    b = b.reshape(b.shape[:nb] + (k, math.prod(right_shape)))
    out = a @ b  # (*batch, L, R), batch dims broadcast
    out = out.reshape(out.shape[:nb] + left_shape + right_shape)
    return out, "".join(batch + left + right)
