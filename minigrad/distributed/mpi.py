"""`MPICommunicator`: the `Communicator` interface on NumPy arrays, through mpi4py.

Arrays go through mpi4py's buffer calls (the capitalised `Allreduce`, `Allgather`, ...:
no pickling), made contiguous first; results are new arrays. MPI has no bfloat16, so
the arrays are float16/32/64 or integers.
"""

from __future__ import annotations

from minigrad.backends import device_of, get_device
from minigrad.distributed.communicator import Communicator, check_reduce_scatter


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("minigrad.distributed: mpi4py is missing; install the extra: "
                          "pip install 'minigrad-llm[distributed]' (mpi4py and mpich)") from exc
    return MPI


class MPICommunicator(Communicator):
    """Wraps an mpi4py communicator (default: COMM_WORLD)."""

    def __init__(self, comm=None):
        self.MPI = _mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    @staticmethod
    def _contiguous(array):
        xp = device_of(array).xp
        return xp.reshape(array, (-1,)), xp  # a view when contiguous, else a copy

    def all_reduce(self, array):
        flat, xp = self._contiguous(array)
        out = xp.empty_like(flat)
        self.comm.Allreduce(flat, out, op=self.MPI.SUM)
        return xp.reshape(out, array.shape)

    def all_gather(self, array):
        flat, xp = self._contiguous(array)
        out = xp.empty((self.size * flat.shape[0],), dtype=array.dtype)
        self.comm.Allgather(flat, out)
        return xp.reshape(out, (self.size * array.shape[0], *array.shape[1:]))

    def reduce_scatter(self, array):
        check_reduce_scatter(array, self.size)
        flat, xp = self._contiguous(array)
        out = xp.empty((flat.shape[0] // self.size,), dtype=array.dtype)
        self.comm.Reduce_scatter_block(flat, out, op=self.MPI.SUM)
        return xp.reshape(out, (array.shape[0] // self.size, *array.shape[1:]))

    def broadcast(self, array, root: int = 0):
        flat, xp = self._contiguous(array)
        out = xp.asarray(flat, copy=True)
        self.comm.Bcast(out, root=root)
        return xp.reshape(out, array.shape)

    def send(self, array, dest: int) -> None:
        flat, _ = self._contiguous(array)
        self.comm.Send(flat, dest=dest)

    def recv(self, shape: tuple, dtype, source: int):
        out = get_device("cpu").xp.empty(tuple(shape), dtype=dtype)
        self.comm.Recv(out, source=source)
        return out

    def send_recv(self, array, dest: int, shape: tuple, dtype, source: int):
        flat, _ = self._contiguous(array)
        out = get_device("cpu").xp.empty(tuple(shape), dtype=dtype)
        self.comm.Sendrecv(flat, dest=dest, recvbuf=out, source=source)
        return out

    def split(self, color, key: int = 0):
        comm = self.comm.Split(self.MPI.UNDEFINED if color is None else color, key)
        return None if comm == self.MPI.COMM_NULL else MPICommunicator(comm)

    def all_gather_object(self, obj) -> list:
        return self.comm.allgather(obj)

    def broadcast_object(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root)

    def gather_object(self, obj, root: int = 0) -> list | None:
        return self.comm.gather(obj, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)
