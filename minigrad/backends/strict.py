"""The 'strict' device: a CPU stand-in for a GPU, on which the op suite runs in CI.

Its arrays are array-api-strict arrays on a non-default device. Primitives reach the
wrapped NumPy buffer the way a CUDA kernel would reach device memory; everything else
must go through the array API, and any implicit host conversion (``np.asarray``,
``float()``, ``bool()``, ``int()``) raises: array-api-strict refuses the NumPy
conversion itself, and `guard_scalar_conversions` makes it refuse Python scalars too.
It has no fused ops: every op runs its own array-API code.
"""

from __future__ import annotations

import numpy as np

from minigrad.backends.device import Device, dtype_name
from minigrad.backends.erf import erf
from minigrad.backends.numpy import HostRandom, check_indices, index_add


class StrictDevice(HostRandom, Device):
    kind = "strict"

    def __init__(self):
        try:
            import array_api_strict as xps
        except ImportError as exc:
            raise RuntimeError("device 'strict' needs array-api-strict: "
                               "pip install 'minigrad-llm[test]'") from exc
        guard_scalar_conversions(xps)
        super().__init__("strict", xps)
        self._device = xps.Device("device1")
        self.placement = {"device": self._device}

    def asarray(self, data, dtype=None):
        self.host_uploads += 1
        if isinstance(data, self.xp._array_object.Array):
            data = data._array
        return self.xp.asarray(np.asarray(data, dtype=None if dtype is None else dtype_name(dtype)),
                               device=self._device)

    def to_host(self, array) -> np.ndarray:
        self.host_transfers += 1
        return np.array(array._array)

    def from_host(self, array: np.ndarray):
        return self.xp.asarray(array, device=self._device)

    def is_array(self, obj) -> bool:
        return isinstance(obj, self.xp._array_object.Array)

    def gather(self, array, key):
        return self.from_host(array._array[_key_to_numpy(key)])

    def index_add(self, target, key, values) -> None:
        index_add(target._array, _key_to_numpy(key), values._array)

    def check_indices(self, indices, size: int, op: str) -> None:
        # Reads the buffer as a device-side assert would, so no host transfer is counted.
        check_indices(indices._array, size, op)

    def erf(self, x):
        return self.from_host(erf(x._array))


def _key_to_numpy(key):
    if isinstance(key, tuple):
        return tuple(_key_to_numpy(k) for k in key)
    return getattr(key, "_array", key)


def guard_scalar_conversions(xps) -> None:
    """Make array-api-strict arrays off the default device refuse Python scalar conversion,
    as a GPU library would have to copy to the host for it."""
    array_cls = xps._array_object.Array
    if getattr(array_cls, "_minigrad_guarded", False):
        return
    default = xps.Device("CPU_DEVICE")
    for method in ("__float__", "__int__", "__bool__", "__index__", "__complex__"):
        original = getattr(array_cls, method)

        def guarded(self, *args, _original=original, _method=method):
            if self.device != default:
                raise RuntimeError(
                    f"implicit host transfer: {_method} on an array on {self.device}; "
                    "engine code must keep device data on the device")
            return _original(self, *args)

        setattr(array_cls, method, guarded)
    array_cls._minigrad_guarded = True
