"""Running a script under `mpiexec -n N` from a test: skips (with the reason) where
mpi4py or the launcher is missing; a launch that outlives its timeout fails the test
instead of hanging it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"


def mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="needs mpi4py (the 'distributed' extra)")
    found = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("needs an MPI launcher (mpiexec; the 'distributed' extra installs mpich)")
    return found


def launch_flags(n: int) -> list[str]:
    """Open MPI refuses root and more ranks than cores unless told; MPICH needs neither."""
    version = subprocess.run([mpiexec(), "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        return ["--allow-run-as-root", "--oversubscribe"]
    return []


def run_mpi(n: int, args: list, timeout: float = 60, check: bool = True):
    """`mpiexec -n n python args...` in the repository root, one BLAS thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [mpiexec(), *launch_flags(n), "-n", str(n), sys.executable, *map(str, args)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} did not finish within {timeout} s (a hang?):\n"
                    f"{exc.stdout}\n{exc.stderr}")
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n"
                    f"{result.stdout}\n{result.stderr}")
    return result
