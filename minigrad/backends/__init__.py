"""Array backends: where arrays live and the primitives the array API lacks.

- ``cpu``: NumPy (`minigrad.backends.numpy`), the reference backend and the fast path
  on CPUs, with blocked CPU kernels (`numpy_kernels`) and BLAS thread control
  (`blas_threads`).
- ``cuda`` / ``cuda:N``: CuPy on an NVIDIA GPU (`minigrad.backends.cupy`, optional
  extra), with the CUDA kernels of `minigrad.backends.cuda`.
- ``strict``: a CPU stand-in for a GPU (`minigrad.backends.strict`). Its arrays are
  array-api-strict arrays on a non-default device, which refuse conversion to NumPy
  and (guarded there) to Python scalars, so code that would silently copy GPU data to
  the host fails on CPU too.

`minigrad.backends.device` holds the `Device` interface and the registry; its public
names are re-exported here. Each concrete backend is imported when its first device is
asked for, so importing minigrad imports neither CuPy nor array-api-strict.
"""

from minigrad.backends.device import (
    DTYPE_NAMES,
    Device,
    device_of,
    devices,
    dtype_name,
    get_device,
    host_array,
    set_tf32,
    tf32_enabled,
)

__all__ = ["DTYPE_NAMES", "Device", "device_of", "devices", "dtype_name", "get_device",
           "host_array", "set_tf32", "tf32_enabled"]
