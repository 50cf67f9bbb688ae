"""Collectives as differentiable `Function`s, for tensor parallelism (Megatron-LM,
Shoeybi et al. 2019), each with its hand-written backward beside its forward.

A column-parallel layer needs its input on every rank and its gradient summed; a
row-parallel layer produces partial sums that must be added up. With `comm` the ranks
that share one layer:

    CopyToParallel      forward: y = x                 backward: dx = sum_r dy_r
    ReduceFromParallel  forward: y = sum_r x_r         backward: dx = dy
    GatherFromParallel  forward: y = concat_r x_r      backward: dx = dy[my chunk]
    ScatterToParallel   forward: y = x[my chunk]       backward: dx = concat_r dy_r

(gather and scatter work on the last axis). Each pair is the transpose of the other, so
the backward of one is the forward of its partner.
"""

from __future__ import annotations

from minigrad.autograd import Function


class CopyToParallel(Function):
    def __init__(self, comm):
        self.comm = comm

    def forward(self, x):
        return x

    def backward(self, dy):
        return self.comm.all_reduce(dy)  # every rank's use of x adds to its gradient


class ReduceFromParallel(Function):
    def __init__(self, comm):
        self.comm = comm

    def forward(self, x):
        return self.comm.all_reduce(x)

    def backward(self, dy):
        return dy  # d(sum_r x_r)/dx_r = 1


def _gather_last_axis(xp, comm, x):
    """concat over ranks along the last axis (the communicator gathers axis 0)."""
    parts = comm.all_gather(xp.moveaxis(x, -1, 0))  # (size * n, ...)
    return xp.moveaxis(parts, 0, -1)


def _chunk_last_axis(comm, x):
    n = x.shape[-1] // comm.size
    return x[..., comm.rank * n:(comm.rank + 1) * n]


class GatherFromParallel(Function):
    def __init__(self, comm):
        self.comm = comm

    def forward(self, x):
        return _gather_last_axis(self.xp, self.comm, x)  # (..., n) -> (..., size * n)

    def backward(self, dy):
        return _chunk_last_axis(self.comm, dy)


class ScatterToParallel(Function):
    def __init__(self, comm):
        self.comm = comm

    def forward(self, x):
        if x.shape[-1] % self.comm.size:
            raise ValueError(f"scatter_to_parallel: last axis {x.shape[-1]} does not split "
                             f"into {self.comm.size} equal chunks")
        return _chunk_last_axis(self.comm, x)  # (..., size * n) -> (..., n)

    def backward(self, dy):
        return _gather_last_axis(self.xp, self.comm, dy)


def copy_to_parallel(x, comm):
    return CopyToParallel(comm)(x)


def reduce_from_parallel(x, comm):
    return ReduceFromParallel(comm)(x)


def gather_from_parallel(x, comm):
    return GatherFromParallel(comm)(x)


def scatter_to_parallel(x, comm):
    return ScatterToParallel(comm)(x)
