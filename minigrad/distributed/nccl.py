"""`NCCLCommunicator`: the `Communicator` interface on CuPy arrays, through NCCL.

As in ChainerMN and llm.c, MPI starts the job and bootstraps NCCL: rank 0 of each
communicator makes the NCCL unique id and broadcasts it over MPI, then every rank joins
with `NcclCommunicator(size, id, rank)`. Collectives run on the current CuPy stream;
Python objects, `barrier` and `abort` go through the MPI communicator underneath.
One GPU per process: rank r uses device r mod (GPUs on its node); the caller selects it
before arrays are made (`minigrad.get_device(f"cuda:{local_rank}")`).
"""

from __future__ import annotations

from minigrad.distributed.communicator import Communicator, check_reduce_scatter
from minigrad.distributed.mpi import MPICommunicator


def _nccl():
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as exc:
        raise ImportError("minigrad.distributed.nccl needs CuPy built with NCCL "
                          "(pip install 'minigrad-llm[cuda12]' and the NCCL library)") from exc
    return cupy, nccl


class NCCLCommunicator(Communicator):
    def __init__(self, mpi: MPICommunicator | None = None):
        self.cupy, self.nccl = _nccl()
        self.mpi = MPICommunicator() if mpi is None else mpi
        self.rank, self.size = self.mpi.rank, self.mpi.size
        unique_id = self.nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.mpi.broadcast_object(unique_id, root=0)
        self.comm = self.nccl.NcclCommunicator(self.size, unique_id, self.rank)
        n = self.nccl
        self._types = {"float16": n.NCCL_FLOAT16, "float32": n.NCCL_FLOAT32,
                       "float64": n.NCCL_FLOAT64, "int32": n.NCCL_INT32,
                       "int64": n.NCCL_INT64, "uint8": n.NCCL_UINT8}
        if hasattr(n, "NCCL_BFLOAT16"):
            self._types["bfloat16"] = n.NCCL_BFLOAT16

    def _type(self, array) -> int:
        name = str(array.dtype)
        if name not in self._types:
            raise TypeError(f"NCCLCommunicator: dtype {name} is not supported; use one of "
                            f"{', '.join(sorted(self._types))}")
        return self._types[name]

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def all_reduce(self, array):
        x = self.cupy.ascontiguousarray(array)
        out = self.cupy.empty_like(x)
        self.comm.allReduce(x.data.ptr, out.data.ptr, x.size, self._type(x),
                            self.nccl.NCCL_SUM, self._stream())
        return out

    def all_gather(self, array):
        x = self.cupy.ascontiguousarray(array)
        out = self.cupy.empty((self.size * x.shape[0], *x.shape[1:]), dtype=x.dtype)
        self.comm.allGather(x.data.ptr, out.data.ptr, x.size, self._type(x), self._stream())
        return out

    def reduce_scatter(self, array):
        check_reduce_scatter(array, self.size)
        x = self.cupy.ascontiguousarray(array)
        out = self.cupy.empty((x.shape[0] // self.size, *x.shape[1:]), dtype=x.dtype)
        self.comm.reduceScatter(x.data.ptr, out.data.ptr, out.size, self._type(x),
                                self.nccl.NCCL_SUM, self._stream())
        return out

    def broadcast(self, array, root: int = 0):
        out = self.cupy.array(array, copy=True, order="C")
        self.comm.broadcast(out.data.ptr, out.data.ptr, out.size, self._type(out), root,
                            self._stream())
        return out

    def send(self, array, dest: int) -> None:
        x = self.cupy.ascontiguousarray(array)
        self.comm.send(x.data.ptr, x.size, self._type(x), dest, self._stream())

    def recv(self, shape: tuple, dtype, source: int):
        out = self.cupy.empty(tuple(shape), dtype=dtype)
        self.comm.recv(out.data.ptr, out.size, self._type(out), source, self._stream())
        return out

    def send_recv(self, array, dest: int, shape: tuple, dtype, source: int):
        x = self.cupy.ascontiguousarray(array)
        out = self.cupy.empty(tuple(shape), dtype=dtype)
        self.nccl.groupStart()  # one group: NCCL runs both together
        self.comm.send(x.data.ptr, x.size, self._type(x), dest, self._stream())
        self.comm.recv(out.data.ptr, out.size, self._type(out), source, self._stream())
        self.nccl.groupEnd()
        return out

    def split(self, color, key: int = 0):
        sub = self.mpi.split(color, key)
        return None if sub is None else NCCLCommunicator(sub)

    def all_gather_object(self, obj) -> list:
        return self.mpi.all_gather_object(obj)

    def broadcast_object(self, obj, root: int = 0):
        return self.mpi.broadcast_object(obj, root)

    def gather_object(self, obj, root: int = 0) -> list | None:
        return self.mpi.gather_object(obj, root)

    def barrier(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.abort()
        self.mpi.abort(code)
