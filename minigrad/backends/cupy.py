"""The CuPy backend: `device="cuda"` / `"cuda:N"` on an NVIDIA GPU.

Loaded by `minigrad.backends.get_device` the first time a CUDA device is asked for, so
minigrad imports and runs without CuPy; asking for `cuda` without it (or without a GPU)
raises a RuntimeError that says what to install.

What the device adds to CuPy's arrays:

- an array-API namespace (`device.xp`): CuPy's own, with the standard's names filled in
  where an older CuPy lacks them (`permute_dims`, `concat`, `astype`, ...);
- the Device primitives: scatter-add (`cupy.add.at`), erf (`cupyx.scipy.special`),
  counted host transfers (`to_host`) and uploads (`asarray`; arrays of 64 KiB and more go
  through pinned staging buffers, so a batch upload is asynchronous);
- random numbers drawn on the GPU by a Philox kernel: a generator's state is two
  integers (seed, offset), which checkpoints save like any other;
- the CUDA kernels of `minigrad.backends.cuda` (compiled at first use) as its fused ops
  (`device.fused_ops`) and optimizer update (`adamw_update`);
- TF32 matmuls, opt-in through `minigrad.backends.set_tf32(True)` (CuPy's compute type
  for float32 GEMMs; setting the environment variable CUPY_TF32=1 before the first
  matmul does the same). Float32 stays exact by default.

Not provided: bfloat16. CuPy has no bfloat16 dtype of its own (NumPy has none to mirror);
CuPy v14 added experimental support through the `ml_dtypes` package, with gaps. Mixed
precision with bf16 autocast and float32 master weights is therefore not offered here;
float16 arrays work, but the fused kernels compute them in float32.

One GPU per process: CuPy launches on its *current* device, so minigrad makes cuda:N
current when it is created and refuses a second index (select GPUs with
CUDA_VISIBLE_DEVICES instead).
"""

from __future__ import annotations

import secrets

import numpy as np

from minigrad.backends.cuda import AdamWKernel, KernelLibrary, PhiloxKernel, fused_ops
from minigrad.backends.device import Device, devices, dtype_name, tf32_enabled

INSTALL_HINT = ("pip install 'minigrad-llm[cuda12]' for CUDA 12.x, or 'minigrad-llm[cuda13]' for "
                "CUDA 13.x (the extras install the matching cupy-cuda12x / cupy-cuda13x wheel)")
PINNED_MIN_BYTES = 64 * 1024  # smaller uploads go straight from pageable memory
PINNED_SLOTS = 4  # staging buffers in flight (a step uploads inputs and targets)

# Array-API names with the CuPy function each stands for, for CuPy releases that predate
# the NumPy 2 spellings. Only names missing from the installed CuPy are filled in.
ALIASES = {
    "permute_dims": lambda cp: cp.transpose,
    "concat": lambda cp: cp.concatenate,
    "pow": lambda cp: cp.power,
    "acos": lambda cp: cp.arccos,
    "asin": lambda cp: cp.arcsin,
    "atan": lambda cp: cp.arctan,
    "atan2": lambda cp: cp.arctan2,
    "acosh": lambda cp: cp.arccosh,
    "asinh": lambda cp: cp.arcsinh,
    "atanh": lambda cp: cp.arctanh,
    "bitwise_invert": lambda cp: cp.invert,
    "bitwise_left_shift": lambda cp: cp.left_shift,
    "bitwise_right_shift": lambda cp: cp.right_shift,
    "astype": lambda cp: lambda x, dtype, /, *, copy=True, device=None: x.astype(dtype,
                                                                                 copy=copy),
    "matrix_transpose": lambda cp: lambda x, /: cp.swapaxes(x, -1, -2),
    "unique_values": lambda cp: cp.unique,
    "vecdot": lambda cp: lambda x1, x2, /, *, axis=-1: cp.sum(cp.conj(x1) * x2, axis=axis),
    "cumulative_sum": lambda cp: _cumulative_sum(cp),
}


def _cumulative_sum(cp):
    def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
        if axis is None:
            if x.ndim > 1:
                raise ValueError("cumulative_sum: axis is required for arrays of more than "
                                 f"one dimension, got shape {x.shape}")
            axis = 0
        out = cp.cumsum(x, axis=axis, dtype=dtype)
        if include_initial:
            shape = list(out.shape)
            shape[axis] = 1
            out = cp.concatenate([cp.zeros(shape, dtype=out.dtype), out], axis=axis)
        return out

    return cumulative_sum


class ArrayNamespace:
    """`module` with the array-API names it lacks added (see `ALIASES`)."""

    def __init__(self, module, extra: dict):
        self._module = module
        self.__dict__.update(extra)

    def __getattr__(self, name):
        value = getattr(self._module, name)
        setattr(self, name, value)  # found once, then a plain attribute
        return value


def array_api_namespace(module):
    """`module` itself if it has every aliased name, else an ArrayNamespace over it."""
    missing = {name: make(module) for name, make in ALIASES.items()
               if not hasattr(module, name)}
    return ArrayNamespace(module, missing) if missing else module


def import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(f"device 'cuda' needs CuPy, which could not be imported ({exc}). "
                           f"Install it with: {INSTALL_HINT}") from exc
    return cupy


def _check_gpu(cupy, index: int) -> None:
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device, driver too old
        raise RuntimeError(f"device 'cuda:{index}': CuPy is installed but finds no usable "
                           f"NVIDIA GPU ({exc})") from exc
    if not 0 <= index < count:
        raise RuntimeError(f"device 'cuda:{index}': only {count} GPU(s) visible "
                           f"(cuda:0 to cuda:{count - 1})")
    for device in devices():
        if device.kind == "cuda" and device.index != index:
            raise RuntimeError(f"device 'cuda:{index}': this process already uses "
                               f"{device.name}; minigrad drives one GPU per process (choose it "
                               "with CUDA_VISIBLE_DEVICES)")


class PhiloxState:
    """A CUDA generator's state: draws are a function of (seed, offset)."""

    def __init__(self, seed: int, offset: int = 0):
        self.seed, self.offset = seed, offset


class PinnedStager:
    """Host -> device copies through a ring of pinned buffers, asynchronous on the
    current stream. A slot is reused only after its previous copy has finished (its
    event), PINNED_SLOTS uploads later, so the host rarely waits."""

    def __init__(self, cupy):
        import cupyx

        self.cupy, self.cupyx = cupy, cupyx
        self.buffers = [None] * PINNED_SLOTS
        self.events = [None] * PINNED_SLOTS
        self.next = 0

    def upload(self, array: np.ndarray):
        cupy = self.cupy
        if array.nbytes < PINNED_MIN_BYTES:
            return cupy.asarray(array)
        slot = self.next
        self.next = (slot + 1) % PINNED_SLOTS
        if self.events[slot] is not None:
            self.events[slot].synchronize()
        buffer = self.buffers[slot]
        if buffer is None or buffer.size < array.nbytes:
            buffer = self.buffers[slot] = self.cupyx.empty_pinned((array.nbytes,), np.uint8)
        staging = buffer[:array.nbytes].view(array.dtype).reshape(array.shape)
        staging[...] = array
        out = cupy.empty(array.shape, dtype=array.dtype)
        stream = cupy.cuda.get_current_stream()
        out.set(staging, stream=stream)
        if self.events[slot] is None:
            self.events[slot] = cupy.cuda.Event(disable_timing=True)
        self.events[slot].record(stream)
        return out


class CupyDevice(Device):
    kind = "cuda"
    has_views = True

    def __init__(self, name: str):
        suffix = name.split(":", 1)[1]
        if not suffix.isdigit():
            raise ValueError(f"unknown device {name!r}: expected 'cuda' or 'cuda:N'")
        index = int(suffix)
        cupy = import_cupy()
        _check_gpu(cupy, index)
        import cupyx
        import cupyx.scipy.special

        self.index = index
        self.cupy = cupy
        # cupy.add.at where this CuPy has it (cupyx.scatter_add is its older, deprecated name)
        self._scatter_add = getattr(cupy.add, "at", None) or cupyx.scatter_add
        self._erf = cupyx.scipy.special.erf
        cupy.cuda.Device(index).use()
        super().__init__(name, array_api_namespace(cupy))
        self._stager = PinnedStager(cupy)
        library = KernelLibrary(self)
        self.fused_ops = fused_ops(library)
        self._adamw = AdamWKernel(library)
        self._philox = PhiloxKernel(library)
        if tf32_enabled():
            self.set_tf32(True)

    def dtype(self, name):
        name = name if isinstance(name, str) else dtype_name(name)
        if name == "bfloat16":
            raise TypeError(f"{self.name}: bfloat16 is not supported on the CuPy backend (CuPy "
                            "has no bfloat16 dtype of its own); use float32 or float16")
        return super().dtype(name)

    # -- kernel host (minigrad.backends.cuda) -----------------------------------------------
    def compile(self, source: str, options: tuple[str, ...]):
        return self.cupy.RawModule(code=source, options=options)

    # -- transfers --------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        if isinstance(data, self.cupy.ndarray):
            return data if dtype is None else data.astype(self.dtype(dtype))
        self.host_uploads += 1
        array = np.asarray(data, dtype=None if dtype is None else dtype_name(dtype))
        return self._stager.upload(np.ascontiguousarray(array))

    def to_host(self, array) -> np.ndarray:
        self.host_transfers += 1
        return self.cupy.asnumpy(array)

    def is_array(self, obj) -> bool:
        return isinstance(obj, self.cupy.ndarray)

    def synchronize(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()

    # -- primitives -------------------------------------------------------------------
    def index_add(self, target, key, values) -> None:
        self._scatter_add(target, key, values)

    def check_indices(self, indices, size: int, op: str) -> None:
        """Not checked on the GPU: reading the indices back would stall every step, and a
        device-side assert would poison the CUDA context. Out-of-range indices give
        wrong values (CuPy wraps them), not an error; check on the CPU when in doubt."""

    def erf(self, x):
        return self._erf(x)

    def adamw_update(self, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                     weight_decay, step) -> None:
        """One launch over a flat buffer; the array-API formula where the kernel cannot
        update in place (not contiguous, not float32/float64)."""
        update = (self._adamw if self._adamw.supports(param, exp_avg, exp_avg_sq)
                  else super().adamw_update)
        update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step)

    # -- random numbers on the device ---------------------------------------------------
    def generator(self, seed):
        seed = secrets.randbits(63) if seed is None else int(seed) % 2 ** 64
        return PhiloxState(seed)

    def random_normal(self, rng, shape, dtype):
        out, rng.offset = self._philox.normal(shape, dtype_name(dtype), rng.seed, rng.offset)
        return out

    def random_uniform(self, rng, shape, dtype):
        out, rng.offset = self._philox.uniform(shape, dtype_name(dtype), rng.seed, rng.offset)
        return out

    def random_integers(self, rng, low, high, shape, dtype="int64"):
        out, rng.offset = self._philox.integers(low, high, shape, dtype_name(dtype), rng.seed,
                                                rng.offset)
        return out

    def generator_state(self, rng):
        return {"algorithm": "philox4x32-10", "seed": rng.seed, "offset": rng.offset}

    def set_generator_state(self, rng, state) -> None:
        if state.get("algorithm") != "philox4x32-10":
            raise ValueError(f"{self.name}: cannot restore a generator state of another "
                             f"device ({state.get('algorithm', 'NumPy PCG64')})")
        rng.seed, rng.offset = int(state["seed"]), int(state["offset"])

    # -- TF32 -----------------------------------------------------------------------------
    def set_tf32(self, enabled: bool) -> None:
        """Let cuBLAS round float32 GEMM inputs to TF32 (see `minigrad.backends.set_tf32`): CuPy's
        compute type for float32, which its public switch (CUPY_TF32=1 in the environment)
        sets once at the first matmul; this sets it at any time."""
        try:
            from cupy import _core
            from cupy._core import _routines_linalg

            compute_type = (_routines_linalg.COMPUTE_TYPE_TF32 if enabled
                            else _routines_linalg.COMPUTE_TYPE_DEFAULT)
            _core.set_compute_type(self.cupy.float32, compute_type)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(f"{self.name}: this CuPy has no compute-type switch ({exc}); "
                               "set CUPY_TF32=1 in the environment before starting Python "
                               "instead") from exc
