"""Array backends: the one module that imports NumPy, CuPy or array-api-strict.

A `Device` pairs an array namespace (`device.xp`, which follows the array API
standard) with the few primitives that standard lacks: scatter-add, erf, random
numbers, host transfers. Op code asks a tensor for its device and calls only
these, so the same op runs on every backend:

- ``cpu``: NumPy, the reference backend and the fast path on CPUs.
- ``cuda`` / ``cuda:N``: CuPy on an NVIDIA GPU (optional extra).
- ``strict``: a CPU stand-in for a GPU. Its arrays are array-api-strict arrays on a
  non-default device, which refuse conversion to NumPy and (guarded here) to Python
  scalars, so code that would silently copy GPU data to the host fails on CPU too.

Host transfers go through `Device.to_host` only; each one is counted in
`Device.host_transfers`, so tests can assert that a training step makes none
beyond the ones the user asked for. Device backends also count uploads of host data
(`Device.host_uploads`: the batch each step, nothing else).

`Device.kernels` maps an op name to a fused device kernel (see `minigrad.cuda`, and
`minigrad.cpu_kernels` for NumPy's); fused ops look theirs up and otherwise run their
array-API code. It is empty on 'strict'.
"""

from __future__ import annotations

import math
import os

import numpy as np

from minigrad.blas_threads import find_openblas_threads

DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
               "int64", "uint8", "uint16", "uint32", "uint64", "bool")


class Device:
    """Where arrays live: the array namespace `xp` plus the non-standard primitives."""

    kind = "abstract"
    # Whether a basic slice or reshape of a contiguous array shares its memory. The array
    # API leaves that unspecified; optimizers keep parameters as views into one flat
    # buffer per dtype only where it holds (NumPy, CuPy), and update per array elsewhere.
    has_views = False
    # Optimizers update their flat buffers in blocks of about this many bytes, so that
    # the temporaries of each elementwise expression stay small and cache-resident (with
    # NumPy, multi-megabyte temporaries cost fresh page faults on every allocation).
    # None: whole buffers at once (a GPU wants one kernel launch per op).
    update_block_bytes: int | None = None

    def __init__(self, name: str, xp):
        self.name = name
        self.xp = xp
        self.host_transfers = 0
        self.host_uploads = 0
        # Fused-op kernels by op name ("softmax", "cross_entropy", ...): objects with
        # forward(fn, *arrays) and backward(fn, *grads) that replace the array-API code
        # of `minigrad.nn.functional`'s ops. Empty unless the backend fills it.
        self.kernels: dict = {}

    def __repr__(self) -> str:
        return f"device(type='{self.name}')"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return self.name == other or (self.kind == other and self.name == f"{other}:0")
        return other is self

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        # One Device per name: copying or unpickling a tensor (copy.deepcopy of a model)
        # refers to the same device instead of trying to copy its array module.
        return get_device, (self.name,)

    # -- dtypes ---------------------------------------------------------------------
    def dtype(self, name):
        """The backend's dtype object for a dtype name or dtype-like."""
        if not isinstance(name, str):
            name = dtype_name(name)
        return getattr(self.xp, name)

    def is_floating(self, dtype) -> bool:
        return dtype_name(dtype) in ("float16", "bfloat16", "float32", "float64")

    # -- creation -------------------------------------------------------------------
    # Keyword arguments that place a new array on this device (array-api-strict's
    # `device=`); empty where arrays land on the current device by default.
    placement: dict = {}

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self.dtype(dtype), **self.placement)

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=self.dtype(dtype), **self.placement)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=self.dtype(dtype), **self.placement)

    def arange(self, start, stop=None, step=1, dtype="int64"):
        return self.xp.arange(start, stop, step, dtype=self.dtype(dtype), **self.placement)

    # -- transfers ------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Host data (Python scalars, lists, NumPy arrays) -> an array on this device."""
        return self.xp.asarray(data, dtype=None if dtype is None else self.dtype(dtype))

    def to_host(self, array) -> np.ndarray:
        """The one way device data reaches the host (explicit, counted)."""
        self.host_transfers += 1
        return np.asarray(array)

    def is_array(self, obj) -> bool:
        return isinstance(obj, np.ndarray)

    # -- primitives the array API standard lacks ------------------------------------
    def matmul(self, a, b):
        """``xp.matmul(a, b)``; a primitive so that the CPU backend can run stacks of small
        products (attention's) its own way (see `minigrad.blas_threads`)."""
        return self.xp.matmul(a, b)

    def gather(self, array, key):
        """``array[key]`` for keys with integer arrays (NumPy's advanced indexing)."""
        return array[key]

    def index_add(self, target, key, values) -> None:
        """In place: ``target[key] += values``, accumulating repeated indices."""
        _numpy_index_add(target, key, values)

    def check_indices(self, indices, size: int, op: str) -> None:
        """Raise IndexError, naming `op`, if an index lies outside [0, size).

        A bounds check has to read the indices; on the CPU that is free. A GPU backend
        should check on the device without waiting for the result (a device-side
        assert) or skip the check, never copy the indices to the host."""
        _check_numpy_indices(indices, size, op)

    def erf(self, x):
        return _erf_numpy(x)

    def generator(self, seed):
        """A device-native random generator (see `minigrad.random.Generator`)."""
        return np.random.default_rng(seed)

    # NumPy's generator draws on the host; device backends override these three.
    def random_normal(self, rng, shape, dtype):
        dtype = dtype_name(dtype)
        if dtype in ("float32", "float64"):
            return self._from_numpy(rng.standard_normal(shape, dtype=dtype))
        return self._from_numpy(rng.standard_normal(shape).astype(dtype))

    def random_uniform(self, rng, shape, dtype):
        dtype = dtype_name(dtype)
        if dtype in ("float32", "float64"):
            return self._from_numpy(rng.random(shape, dtype=dtype))
        return self._from_numpy(rng.random(shape).astype(dtype))

    def random_integers(self, rng, low, high, shape, dtype="int64"):
        return self._from_numpy(rng.integers(low, high, size=shape, dtype=dtype_name(dtype)))

    def _from_numpy(self, array: np.ndarray):
        return array

    def generator_state(self, rng):
        return rng.bit_generator.state

    def set_generator_state(self, rng, state) -> None:
        rng.bit_generator.state = state

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on CPU)."""


class NumpyDevice(Device):
    kind = "cpu"
    has_views = True
    update_block_bytes = 1 << 18

    # Stacks of products of up to this much work each (M N K) run on one BLAS thread:
    # attention's 256 x 64 x 256 products are 2^22.
    small_product_work = 1 << 23

    def __init__(self):
        super().__init__("cpu", np)
        from minigrad.cpu_kernels import cpu_kernels  # imports this module: not at the top

        self.kernels = cpu_kernels()
        numpy_libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        self.blas = find_openblas_threads([numpy_libs])  # None: another BLAS

    def to_host(self, array) -> np.ndarray:
        # NumPy data already lives on the host: nothing moves, nothing is counted.
        return np.asarray(array)

    def matmul(self, a, b):
        """A stack of small products runs on one BLAS thread (see minigrad.blas_threads)."""
        small_stack = (self.blas is not None and min(a.ndim, b.ndim) >= 2
                       and max(a.ndim, b.ndim) >= 3
                       and a.shape[-2] * a.shape[-1] * b.shape[-1] <= self.small_product_work)
        if not small_stack:
            return np.matmul(a, b)
        with self.blas.one_thread():
            return np.matmul(a, b)


class StrictDevice(Device):
    """CPU stand-in for a GPU: array-api-strict arrays on a non-default device.

    Primitives reach the wrapped NumPy buffer the way a CUDA kernel would reach device
    memory; everything else must go through the array API, and any implicit host
    conversion (``np.asarray``, ``float()``, ``bool()``, ``int()``) raises.
    """

    kind = "strict"

    def __init__(self):
        import array_api_strict as xps

        _guard_strict_scalar_conversions(xps)
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

    def is_array(self, obj) -> bool:
        return isinstance(obj, self.xp._array_object.Array)

    def _from_numpy(self, array: np.ndarray):
        return self.xp.asarray(array, device=self._device)

    def gather(self, array, key):
        return self._from_numpy(array._array[_strict_key_to_numpy(key)])

    def index_add(self, target, key, values) -> None:
        _numpy_index_add(target._array, _strict_key_to_numpy(key), values._array)

    def check_indices(self, indices, size: int, op: str) -> None:
        # Reads the buffer as a device-side assert would, so no host transfer is counted.
        _check_numpy_indices(indices._array, size, op)

    def erf(self, x):
        return self._from_numpy(_erf_numpy(x._array))


def _numpy_index_add(target: np.ndarray, key, values: np.ndarray) -> None:
    """np.add.at, with one special case: whole rows picked by one integer array (the
    backward of an embedding lookup) are added through a flat view of the target, which
    NumPy's add.at does about 5x faster than a row-by-row scatter."""
    rows = (isinstance(key, np.ndarray) and key.dtype.kind in "iu" and target.ndim > 1
            and target.flags.c_contiguous and values.shape == key.shape + target.shape[1:])
    if not rows:
        np.add.at(target, key, values)
        return
    row_size = math.prod(target.shape[1:])
    # Row r's elements sit at r * row_size + 0 .. row_size - 1 (negative rows wrap the
    # same way on the flat view as on the rows).
    flat_key = (key.astype(np.intp).reshape(-1, 1) * row_size + np.arange(row_size)).reshape(-1)
    np.add.at(target.reshape(-1), flat_key, values.reshape(-1))


def _check_numpy_indices(indices: np.ndarray, size: int, op: str) -> None:
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise IndexError(f"{op}: index {bad} is out of range for size {size} "
                         f"(valid: 0 to {size - 1})")


def _strict_key_to_numpy(key):
    if isinstance(key, tuple):
        return tuple(_strict_key_to_numpy(k) for k in key)
    return getattr(key, "_array", key)


def _guard_strict_scalar_conversions(xps) -> None:
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


def dtype_name(dtype) -> str:
    """The canonical name ('float32', 'int64', ...) of any backend's dtype."""
    if isinstance(dtype, str):
        return dtype
    name = getattr(dtype, "_np_dtype", None)  # array-api-strict dtypes wrap a NumPy one
    if name is not None:
        return np.dtype(name).name
    return np.dtype(dtype).name


# -- erf -------------------------------------------------------------------------------
# NumPy has no erf. Cody's rational Chebyshev approximations (W. J. Cody, "Rational
# Chebyshev approximations for the error function", Math. Comp. 1969), as used by
# CALERF, are accurate to float64 rounding on three ranges of |x|.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _erf_numpy(x: np.ndarray) -> np.ndarray:
    """erf(x) for a NumPy array, float64 internally, returned in x's dtype."""
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float64
    x64 = np.asarray(x, dtype=np.float64)
    ax = np.abs(x64)
    result = np.empty_like(x64)

    small = ax <= 0.46875
    xs = x64[small]
    z = xs * xs
    num = _ERF_A[4] * z
    den = z
    for i in range(3):
        num = (num + _ERF_A[i]) * z
        den = (den + _ERF_B[i]) * z
    result[small] = xs * (num + _ERF_A[3]) / (den + _ERF_B[3])

    mid = (ax > 0.46875) & (ax <= 4.0)
    y = ax[mid]
    num = _ERF_C[8] * y
    den = y
    for i in range(7):
        num = (num + _ERF_C[i]) * y
        den = (den + _ERF_D[i]) * y
    erfc_mid = (num + _ERF_C[7]) / (den + _ERF_D[7]) * _erfc_scale(y)
    result[mid] = np.copysign(1.0 - erfc_mid, x64[mid])

    large = ax > 4.0
    y = np.minimum(ax[large], 27.0)  # erfc(27) underflows to 0; keeps inf - inf out
    z = 1.0 / (y * y)
    num = _ERF_P[5] * z
    den = z
    for i in range(4):
        num = (num + _ERF_P[i]) * z
        den = (den + _ERF_Q[i]) * z
    r = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    erfc_large = (_INV_SQRT_PI - r) / y * _erfc_scale(y)
    result[large] = np.copysign(1.0 - erfc_large, x64[large])

    result[np.isnan(x64)] = np.nan
    return result.astype(out_dtype, copy=False)


def _erfc_scale(y: np.ndarray) -> np.ndarray:
    """exp(-y*y), split as in CALERF so that y*y loses no bits for large y."""
    ysq = np.trunc(y * 16.0) / 16.0
    return np.exp(-ysq * ysq) * np.exp(-(y - ysq) * (y + ysq))


# -- device registry -------------------------------------------------------------------
_DEVICES: dict[str, Device] = {}
_TF32 = [False]


def set_tf32(enabled: bool = True) -> None:
    """Opt in (or out) of TF32 matmuls on CUDA devices: float32 inputs rounded to a 10-bit
    mantissa inside cuBLAS, float32 accumulation; faster on Ampere and newer GPUs, ~1e-3
    relative error. Off by default (exact float32). No effect on CPU devices."""
    _TF32[0] = bool(enabled)
    for device in _DEVICES.values():
        if device.kind == "cuda":
            device.set_tf32(_TF32[0])


def tf32_enabled() -> bool:
    return _TF32[0]


def get_device(device=None) -> Device:
    """The Device for a name ('cpu', 'strict', 'cuda', 'cuda:1') or a Device (returned as is)."""
    if isinstance(device, Device):
        return device
    name = "cpu" if device is None else str(device)
    if name == "cuda":
        name = "cuda:0"
    found = _DEVICES.get(name)
    if found is None:
        found = _DEVICES[name] = _make_device(name)
    return found


def _make_device(name: str) -> Device:
    if name == "cpu":
        return NumpyDevice()
    if name == "strict":
        try:
            return StrictDevice()
        except ImportError as exc:
            raise RuntimeError("device 'strict' needs array-api-strict: "
                               "pip install 'minigrad[test]'") from exc
    if name.startswith("cuda:"):
        from minigrad.cuda_backend import CupyDevice

        return CupyDevice(name)
    raise ValueError(f"unknown device {name!r}: expected 'cpu', 'cuda', 'cuda:N' or 'strict'")


def cpu_device() -> Device:
    return get_device("cpu")


def device_of(obj) -> Device | None:
    """The Device an array lives on, or None for host data (scalars, lists, NumPy scalars)."""
    if isinstance(obj, np.ndarray):
        return get_device("cpu")
    module = type(obj).__module__
    if module.startswith("array_api_strict"):
        return get_device("strict") if str(obj.device) != "CPU_DEVICE" else None
    if module.startswith("cupy"):
        return get_device(f"cuda:{obj.device.id}")
    return None


def host_array(data, dtype=None) -> np.ndarray:
    """Host data -> NumPy array. Python floats become float32 (the default float dtype),
    Python ints int64; NumPy arrays keep their dtype unless `dtype` is given."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype_name(dtype))
    array = np.asarray(data)
    if isinstance(data, np.ndarray | np.generic):
        return array
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind not in "fb":
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} "
                        f"(NumPy dtype {array.dtype})")
    return array
