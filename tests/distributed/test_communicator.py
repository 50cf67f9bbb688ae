"""The communicator contract on the MPI implementation (2 ranks), the differentiable
collectives' backwards, launch detection, and the NCCL implementation where GPUs are."""

from __future__ import annotations

import pytest
from mpi_launch import WORKERS, run_mpi

from minigrad.distributed import launched_size


def test_mpi_communicator_contract():
    result = run_mpi(2, [WORKERS / "communicator_contract.py"])
    assert result.stdout.count("communicator contract ok") == 2


def test_launched_size_reads_the_launcher(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launched_size() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_size() == 4


@pytest.mark.gpu
def test_nccl_communicator_contract():
    cupy = pytest.importorskip("cupy", reason="NCCL needs CuPy")
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("the NCCL communicator needs two GPUs")
    result = run_mpi(2, [WORKERS / "communicator_contract.py", "cuda"])
    assert result.stdout.count("communicator contract ok") == 2
