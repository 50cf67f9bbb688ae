"""`Communicator`: the collectives parallel training needs, behind one small interface.

A communicator joins `size` processes (ranks, numbered 0 .. size - 1). Every method is a
named primitive on arrays of the communicator's device; reductions sum. Collectives
must be called by every rank of the communicator, in the same order:

    all_reduce(x)        every rank gets x_0 + x_1 + ... (same shape)
    all_gather(x)        every rank gets concat(x_0, x_1, ...) along axis 0
    reduce_scatter(x)    rank r gets chunk r (along axis 0) of x_0 + x_1 + ...
    broadcast(x, root)   every rank gets x_root
    send(x, dest) / recv(shape, dtype, source)   point to point, in program order
    send_recv(x, dest, shape, dtype, source)     both at once (no deadlock when two
                         ranks send to each other)
    split(color, key)    the sub-communicator of the ranks that pass the same color
                         (None for a rank passing color=None), ordered by key

Python objects (a checkpoint's small state, a rank's error) travel with
`all_gather_object`, `gather_object` (to one root) and `broadcast_object`. `abort` ends
every process of the job, so one failing rank cannot leave the others waiting in a
collective forever.

Implementations: `minigrad.distributed.mpi` (NumPy arrays, mpi4py) and
`minigrad.distributed.nccl` (CuPy arrays, NCCL, bootstrapped over MPI).
"""

from __future__ import annotations


class Communicator:
    rank: int
    size: int

    def all_reduce(self, array):
        raise NotImplementedError

    def all_gather(self, array):
        raise NotImplementedError

    def reduce_scatter(self, array):
        raise NotImplementedError

    def broadcast(self, array, root: int = 0):
        raise NotImplementedError

    def send(self, array, dest: int) -> None:
        raise NotImplementedError

    def recv(self, shape: tuple, dtype, source: int):
        raise NotImplementedError

    def send_recv(self, array, dest: int, shape: tuple, dtype, source: int):
        raise NotImplementedError

    def split(self, color: int | None, key: int = 0) -> Communicator | None:
        raise NotImplementedError

    def all_gather_object(self, obj) -> list:
        raise NotImplementedError

    def broadcast_object(self, obj, root: int = 0):
        raise NotImplementedError

    def gather_object(self, obj, root: int = 0) -> list | None:
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


def check_reduce_scatter(array, size: int) -> None:
    """reduce_scatter cuts axis 0 into `size` equal chunks."""
    if array.ndim == 0 or array.shape[0] % size:
        raise ValueError(f"reduce_scatter: axis 0 of shape {tuple(array.shape)} must split "
                         f"into {size} equal chunks")
