"""The Device interface and the registry of devices by name.

A `Device` pairs an array namespace (`device.xp`, which follows the array API
standard) with the few primitives that standard lacks: scatter-add, erf, random
numbers, host transfers, the optimizer update, fused kernels. Op code asks a tensor for
its device and calls only these, so the same op runs on every backend (see
`minigrad.backends` for the list).

Host transfers go through `Device.to_host` only; each one is counted in
`Device.host_transfers`, so tests can assert that a training step makes none beyond the
ones the user asked for. Device backends also count uploads of host data
(`Device.host_uploads`: the batch each step, nothing else).

`Device.fused_ops` maps a fused op's name (`FusedFunction.name`, see
`minigrad.nn.functional._fused`) to a kernel with one protocol:

    kernel.supports(fn, *arrays) -> bool     whether it handles these inputs
    kernel.forward(fn, *arrays)  -> output array(s)
    kernel.backward(fn, *grads)  -> input gradient(s)

`fn` is the op's Function (its parameters, `save_for_backward`, `saved`,
`needs_input_grad`). Ops without an entry, or whose inputs it does not support, run
their own array-API code.

This module imports no concrete backend: `get_device` imports the one it is asked for
by name (NumPy's on first use of 'cpu', CuPy's only when a GPU is asked for).
"""

from __future__ import annotations

import importlib
import math

import numpy as np

DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
               "int64", "uint8", "uint16", "uint32", "uint64", "bool")


class Device:
    """Where arrays live: the array namespace `xp` plus the non-standard primitives.

    The primitives a backend must provide raise NotImplementedError here; the others
    have an array-API definition that a backend may replace with a faster one."""

    kind = "abstract"
    # Whether a basic slice or reshape of a contiguous array shares its memory. The array
    # API leaves that unspecified; optimizers keep parameters as views into one flat
    # buffer per dtype only where it holds (NumPy, CuPy), and update per array elsewhere.
    has_views = False
    # Optimizers update their flat buffers, and fused ops such as LayerNorm go through
    # large arrays, in blocks of about this many bytes, so that the temporaries of each
    # elementwise expression stay small and cache-resident (with NumPy, multi-megabyte
    # temporaries cost a pass through memory each, and fresh page faults).
    # None: whole arrays at once (a GPU wants one kernel launch per op).
    block_bytes: int | None = None

    def __init__(self, name: str, xp):
        self.name = name
        self.xp = xp
        self.host_transfers = 0
        self.host_uploads = 0
        # Fused-op kernels by op name (see the module docstring). Empty unless the
        # backend fills it.
        self.fused_ops: dict = {}

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

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self.dtype(dtype), **self.placement)

    def arange(self, start, stop=None, step=1, dtype="int64"):
        return self.xp.arange(start, stop, step, dtype=self.dtype(dtype), **self.placement)

    # -- transfers (each backend's own) -----------------------------------------------
    def asarray(self, data, dtype=None):
        """Host data (Python scalars, lists, NumPy arrays) -> an array on this device."""
        raise NotImplementedError

    def to_host(self, array) -> np.ndarray:
        """The one way device data reaches the host (explicit, counted)."""
        raise NotImplementedError

    def is_array(self, obj) -> bool:
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on CPU)."""

    # -- primitives the array API standard lacks ------------------------------------
    def matmul(self, a, b, bias=None):
        """``xp.matmul(a, b)``, plus ``bias`` (broadcast over the result's rows) if given; a
        primitive so that the CPU backend can run stacks of small products (attention's)
        its own way (see `minigrad.backends.blas_threads`) and add a linear layer's bias
        inside each worker's rows."""
        out = self.xp.matmul(a, b)
        if bias is not None:
            out += bias
        return out

    def sums_of_squares(self, arrays):
        """(len(arrays),): each array's sum of squared elements, as the dot product of its
        flattened elements with themselves (one pass, no temporary, in its dtype); a
        primitive so that the CPU backend sets BLAS up once for the whole list (gradient
        clipping takes one per parameter)."""
        xp = self.xp
        flat = [xp.reshape(a, (-1,)) for a in arrays]
        return xp.stack([self.matmul(f, f) for f in flat])

    # Parts a fused op may split its work into for `parallel_map` (the CPU backend: one
    # per core; a GPU parallelises inside each kernel instead).
    workers = 1

    def parallel_map(self, fn, items) -> list:
        """[fn(item) for item in items], possibly run concurrently (the CPU backend runs
        them on its worker threads). Each fn must write only memory of its own."""
        return [fn(item) for item in items]

    def gather(self, array, key):
        """``array[key]`` for keys with integer arrays (NumPy's advanced indexing)."""
        return array[key]

    def index_add(self, target, key, values) -> None:
        """In place: ``target[key] += values``, accumulating repeated indices."""
        raise NotImplementedError

    def check_indices(self, indices, size: int, op: str) -> None:
        """Raise IndexError, naming `op`, if an index lies outside [0, size).

        A bounds check has to read the indices; on the CPU that is free. A GPU backend
        should check on the device without waiting for the result (a device-side
        assert) or skip the check, never copy the indices to the host."""
        raise NotImplementedError

    def erf(self, x):
        raise NotImplementedError

    def adamw_update(self, param, grad, exp_avg, exp_avg_sq, lr: float, beta1: float,
                     beta2: float, eps: float, weight_decay: float, step: int) -> None:
        """One AdamW step, in place on param and the moments (see `minigrad.optim.adam`
        for the rule); the optimizer's primitive, which a backend may run as one kernel.
        Equal-shaped arrays of one dtype; the scalars are Python numbers, `step` counts
        from 1."""
        adamw_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                   step, self.xp.empty_like(param), self.xp.empty_like(param))

    # -- random numbers (each backend's own) ------------------------------------------
    def generator(self, seed):
        """A device-native random generator (see `minigrad.random.Generator`)."""
        raise NotImplementedError

    def random_normal(self, rng, shape, dtype):
        raise NotImplementedError

    def random_uniform(self, rng, shape, dtype):
        raise NotImplementedError

    def random_integers(self, rng, low, high, shape, dtype="int64"):
        raise NotImplementedError

    def generator_state(self, rng):
        raise NotImplementedError

    def set_generator_state(self, rng, state) -> None:
        raise NotImplementedError

    # -- TF32 -------------------------------------------------------------------------
    def set_tf32(self, enabled: bool) -> None:
        """Switch TF32 matmuls (see `set_tf32`); nothing to switch except on CUDA."""


def adamw_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
               update, denom) -> None:
    """The AdamW update (`minigrad.optim.adam`), in place, with two scratch arrays
    (`update`, `denom`, shaped like param) so that no operator allocates:

        p = p (1 - lr wd);  m += (1 - beta1)(g - m);  v = beta2 v + (1 - beta2) g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    if weight_decay:
        param *= 1 - lr * weight_decay
    update[...] = grad
    update -= exp_avg
    update *= 1 - beta1
    exp_avg += update
    exp_avg_sq *= beta2
    update[...] = grad
    update *= 1 - beta2
    update *= grad
    exp_avg_sq += update
    denom[...] = exp_avg_sq
    denom **= 0.5
    denom /= math.sqrt(1 - beta2 ** step)
    denom += eps
    update[...] = exp_avg
    update *= lr / (1 - beta1 ** step)
    update /= denom
    param -= update


_DTYPE_NAMES: dict = {}  # NumPy dtype-like -> name, filled by dtype_name (.name is slow)


def dtype_name(dtype) -> str:
    """The canonical name ('float32', 'int64', ...) of any backend's dtype."""
    if isinstance(dtype, str):
        return dtype
    wrapped = getattr(dtype, "_np_dtype", None)  # array-api-strict dtypes wrap a NumPy one
    key = dtype if wrapped is None else wrapped
    try:
        return _DTYPE_NAMES[key]
    except KeyError:
        name = _DTYPE_NAMES[key] = np.dtype(key).name
        return name
    except TypeError:  # an unhashable dtype-like (a structured dtype's field list)
        return np.dtype(key).name


# -- the registry ----------------------------------------------------------------------
# The class of each kind of device, as (module, class name): imported on first use.
BACKENDS = {
    "cpu": ("minigrad.backends.numpy", "NumpyDevice"),
    "strict": ("minigrad.backends.strict", "StrictDevice"),
    "cuda": ("minigrad.backends.cupy", "CupyDevice"),
}
_devices: dict[str, Device] = {}
_tf32 = [False]


def get_device(device=None) -> Device:
    """The Device for a name ('cpu', 'strict', 'cuda', 'cuda:1') or a Device (returned as is)."""
    if isinstance(device, Device):
        return device
    name = "cpu" if device is None else str(device)
    if name == "cuda":
        name = "cuda:0"
    found = _devices.get(name)
    if found is None:
        found = _devices[name] = _make_device(name)
    return found


def _make_device(name: str) -> Device:
    kind = name.split(":", 1)[0]
    if kind not in BACKENDS or (":" in name) != (kind == "cuda"):
        raise ValueError(f"unknown device {name!r}: expected 'cpu', 'cuda', 'cuda:N' or "
                         "'strict'")
    module, cls = BACKENDS[kind]
    device_class = getattr(importlib.import_module(module), cls)
    return device_class(name) if kind == "cuda" else device_class()


def devices() -> list[Device]:
    """The devices created so far."""
    return list(_devices.values())


def set_tf32(enabled: bool = True) -> None:
    """Opt in (or out) of TF32 matmuls on CUDA devices: float32 inputs rounded to a 10-bit
    mantissa inside cuBLAS, float32 accumulation; faster on Ampere and newer GPUs, ~1e-3
    relative error. Off by default (exact float32). No effect on CPU devices."""
    _tf32[0] = bool(enabled)
    for device in _devices.values():
        device.set_tf32(_tf32[0])


def tf32_enabled() -> bool:
    return _tf32[0]


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
