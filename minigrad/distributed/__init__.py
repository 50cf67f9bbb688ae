"""Several processes training one model: the `Communicator` interface and its MPI
(NumPy) and NCCL (CuPy) implementations, how a launch is detected, and the collectives
as differentiable Functions (tensor parallelism). mpi4py is imported only when a
communicator is made (the `distributed` extra)."""

from minigrad.distributed.collectives import (
    CopyToParallel,
    GatherFromParallel,
    ReduceFromParallel,
    ScatterToParallel,
    copy_to_parallel,
    gather_from_parallel,
    reduce_from_parallel,
    scatter_to_parallel,
)
from minigrad.distributed.communicator import Communicator
from minigrad.distributed.launch import launched_size, local_device, world

__all__ = ["Communicator", "CopyToParallel", "GatherFromParallel", "ReduceFromParallel",
           "ScatterToParallel", "copy_to_parallel", "gather_from_parallel", "launched_size",
           "local_device", "reduce_from_parallel", "scatter_to_parallel", "world"]
