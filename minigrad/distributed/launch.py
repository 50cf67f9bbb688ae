"""Starting a distributed job: is this process one of an MPI launch, and its communicator.

`mpiexec -n N python ...` starts N processes; the launcher tells each its rank through
environment variables (MPICH/Hydra: PMI_RANK and PMI_SIZE; Open MPI:
OMPI_COMM_WORLD_RANK and OMPI_COMM_WORLD_SIZE; PMIx launchers: PMIX_RANK). Reading them
first means a process started without a launcher gets a clear error instead of
silently training alone as rank 0 of 1.
"""

from __future__ import annotations

import os

_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_size() -> int | None:
    """The number of processes the MPI launcher started, or None without a launcher."""
    for name in _SIZE_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    return None


def local_device(device: str) -> str:
    """The device of this process: with several processes per node each takes its own GPU
    ("cuda" -> "cuda:<local rank>"); CPU names are kept."""
    if device != "cuda":
        return device
    for name in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK"):
        if name in os.environ:
            return f"cuda:{os.environ[name]}"
    return device


def world(device: str = "cpu"):
    """The communicator of all processes of the launch: MPI on the CPU, NCCL on a GPU
    (CUDA device names), bootstrapped over MPI."""
    from minigrad.distributed.mpi import MPICommunicator

    mpi = MPICommunicator()
    if device.startswith("cuda"):
        from minigrad.distributed.nccl import NCCLCommunicator

        return NCCLCommunicator(mpi)
    return mpi
