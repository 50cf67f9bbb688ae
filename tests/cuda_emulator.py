"""Run minigrad's CUDA kernels on the CPU, so CI tests the kernel code without a GPU.

A kernel source is compiled as C++ (g++) with a prelude that supplies what CUDA C
provides: `threadIdx`, `blockIdx`, `blockDim`, `gridDim`, `__shared__` (function
statics: blocks run one after another), `__syncthreads`, `__shfl_xor_sync` and the few
intrinsics the kernels use. Each CUDA thread of a block is a coroutine with its own
stack (ucontext), run until it reaches a barrier: `__syncthreads` releases the block
once every thread waits there, a shuffle releases its warp once all 32 lanes do. A
thread runs as far as it can before the next one starts, so a missing barrier shows up
as wrong values, and a barrier some thread never reaches fails the launch.

`EmulatedHost` is a kernel host (NumPy arrays plus `compile`), so the wrappers of
`minigrad.backends.cuda` drive the emulated kernels exactly as they drive CuPy's.
Launches check every argument against the kernel's C signature (an array of the right
element type for a pointer, a NumPy scalar of the exact type for a value): checks CuPy
cannot make, as it would pass a Python float as a double.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

COMPILER = shutil.which("g++")
CACHE_DIR = Path(tempfile.gettempdir()) / "minigrad-cuda-emulator"

_C_TYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64,
            "unsigned int": np.uint32, "unsigned long long": np.uint64}

PRELUDE = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
dim3 threadIdx, blockIdx, blockDim, gridDim;  // threadIdx: set on each switch to a thread

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict

namespace emu {
enum State { RUNNABLE, AT_SYNCTHREADS, AT_WARP_SYNC, DONE };
const int STACK_BYTES = 256 * 1024;

ucontext_t scheduler;
ucontext_t contexts[1024];
char* stacks[1024];
State states[1024];
dim3 indices[1024];
int n_threads, current, error;
void (*invoke)(void*);
void* body;
unsigned char warp_slots[1024][8];

void entry() {
    invoke(body);
    states[current] = DONE;  // uc_link returns to the scheduler
}

// Park the current thread in `state` until the scheduler releases it.
void wait(State state) {
    states[current] = state;
    swapcontext(&contexts[current], &scheduler);
}

// Run every runnable thread until it parks or ends; then release a complete warp or the
// whole block. Returns 1 when some thread waits at a barrier that cannot complete.
int run_block() {
    for (;;) {
        for (int t = 0; t < n_threads; ++t) {
            if (states[t] != RUNNABLE) continue;
            current = t;
            threadIdx = indices[t];
            swapcontext(&scheduler, &contexts[t]);
        }
        int done = 0, at_block = 0;
        bool released = false;
        for (int t = 0; t < n_threads; ++t) {
            done += states[t] == DONE;
            at_block += states[t] == AT_SYNCTHREADS;
        }
        if (done == n_threads) return 0;
        for (int w = 0; w * 32 < n_threads; ++w) {
            const int first = w * 32, last = first + 32 < n_threads ? first + 32 : n_threads;
            bool whole = true;
            for (int t = first; t < last; ++t) whole = whole && states[t] == AT_WARP_SYNC;
            if (whole) {
                for (int t = first; t < last; ++t) states[t] = RUNNABLE;
                released = true;
            }
        }
        if (!released && at_block == n_threads) {
            for (int t = 0; t < n_threads; ++t) states[t] = RUNNABLE;
            released = true;
        }
        if (!released) return 1;
    }
}

template <class Body>
void call(void* b) { (*static_cast<Body*>(b))(); }

// Blocks run one after another (their __shared__ statics are reused); within a block
// every CUDA thread is a coroutine on its own stack, switched at barriers.
template <class Body>
int launch(dim3 grid, dim3 block, Body kernel_body) {
    gridDim = grid;
    blockDim = block;
    n_threads = block.x * block.y * block.z;
    if (n_threads > 1024) return 2;
    invoke = call<Body>;
    body = &kernel_body;
    error = 0;
    for (int t = 0; t < n_threads; ++t) {
        if (!stacks[t]) stacks[t] = static_cast<char*>(malloc(STACK_BYTES));
        indices[t] = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    }
    for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = dim3{bx, by, bz};
        for (int t = 0; t < n_threads; ++t) {
            getcontext(&contexts[t]);
            contexts[t].uc_stack.ss_sp = stacks[t];
            contexts[t].uc_stack.ss_size = STACK_BYTES;
            contexts[t].uc_link = &scheduler;
            makecontext(&contexts[t], entry, 0);
            states[t] = RUNNABLE;
        }
        if (run_block()) return 1;
        if (error) return 2;
    }
    return 0;
}
}  // namespace emu

inline void __syncthreads() { emu::wait(emu::AT_SYNCTHREADS); }

template <class T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask) {
    const int t = emu::current, lane = t % 32;
    if (mask != 0xffffffffu || t - lane + 32 > emu::n_threads) emu::error = 1;  // full warps
    memcpy(emu::warp_slots[t], &value, sizeof(T));
    emu::wait(emu::AT_WARP_SYNC);
    T out;
    memcpy(&out, emu::warp_slots[(t - lane) + ((lane ^ lane_mask) & 31)], sizeof(T));
    emu::wait(emu::AT_WARP_SYNC);  // no lane overwrites its slot before all have read
    return out;
}

inline float __int_as_float(int bits) { float f; memcpy(&f, &bits, 4); return f; }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
"""

_KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)', re.S)


def _parameters(signature: str) -> list[tuple[str, str]]:
    """'const float* __restrict__ x, int n' -> [('const float*', 'x'), ('int', 'n')]."""
    params = []
    for part in signature.split(","):
        words = part.replace("__restrict__", "").replace("*", "* ").split()
        params.append((" ".join(words[:-1]).replace(" *", "*"), words[-1]))
    return params


class EmulatedKernel:
    def __init__(self, library, name: str, params, defines: dict):
        self.name = name
        self.params = params
        self.launcher = getattr(library, f"emu_launch_{name}")
        self.launcher.restype = ctypes.c_int
        self.launcher.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p]
        scalar = defines.get("SCALAR_T", "float")
        self.expected = []
        for ctype, pname in params:
            base = ctype.replace("const", "").replace("*", "").strip()
            base = scalar if base == "scalar_t" else base
            self.expected.append((pname, ctype.endswith("*"), np.dtype(_C_TYPES[base])))

    def __call__(self, grid, block, args, shared_mem: int = 0):
        if len(args) != len(self.expected):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.expected)} "
                            "parameters")
        keep, slots = [], (ctypes.c_void_p * len(args))()
        for i, (arg, (pname, is_pointer, dtype)) in enumerate(zip(args, self.expected)):
            if is_pointer:
                if not isinstance(arg, np.ndarray) or arg.dtype != dtype:
                    raise TypeError(f"{self.name}: {pname} must be an array of {dtype}, got "
                                    f"{type(arg).__name__} {getattr(arg, 'dtype', '')}")
                if not arg.flags.c_contiguous:
                    raise ValueError(f"{self.name}: {pname} must be C-contiguous")
                cell = np.array([arg.ctypes.data], dtype=np.uintp)
            else:
                if not isinstance(arg, np.generic) or arg.dtype != dtype:
                    raise TypeError(f"{self.name}: {pname} must be a NumPy {dtype} scalar, "
                                    f"got {type(arg).__name__} {getattr(arg, 'dtype', '')}")
                cell = np.array([arg], dtype=dtype)
            keep.append(cell)
            slots[i] = cell.ctypes.data
        grid, block = _dims(grid), _dims(block)
        if block[0] * block[1] * block[2] > 1024:
            raise ValueError(f"{self.name}: more than 1024 threads per block: {block}")
        status = self.launcher(*grid, *block, slots)
        if status:
            cause = "a barrier not reached by every thread" if status == 1 else "an exception"
            raise RuntimeError(f"{self.name}: the launch failed ({cause})")


def _dims(dims) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in dims)
    return dims + (1,) * (3 - len(dims))


class EmulatedModule:
    def __init__(self, source: str, options: tuple[str, ...]):
        self.defines = dict(o[2:].split("=", 1) for o in options if o.startswith("-D"))
        kernels = {name: _parameters(sig) for name, sig in _KERNEL.findall(source)}
        wrappers = []
        for name, params in kernels.items():
            call = ", ".join(f"*reinterpret_cast<{ctype} *>(args[{i}])"
                             for i, (ctype, _) in enumerate(params))
            wrappers.append(
                f'extern "C" int emu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, '
                f"unsigned bx, unsigned by, unsigned bz, void** args) {{\n"
                f"    return emu::launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, "
                f"[&] {{ {name}({call}); }});\n}}\n")
        defines = "".join(f"#define {k} {v}\n" for k, v in self.defines.items())
        text = defines + PRELUDE + source + "\n" + "".join(wrappers)
        self.library = ctypes.CDLL(str(_compile(text)))
        self.kernels = {name: EmulatedKernel(self.library, name, params, self.defines)
                        for name, params in kernels.items()}

    def get_function(self, name: str) -> EmulatedKernel:
        return self.kernels[name]


def _compile(text: str) -> Path:
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    CACHE_DIR.mkdir(exist_ok=True)
    library = CACHE_DIR / f"{digest}.so"
    if not library.exists():
        source = CACHE_DIR / f"{digest}.cpp"
        source.write_text(text)
        partial = CACHE_DIR / f"{digest}.{os.getpid()}.so"
        done = subprocess.run([COMPILER, "-std=c++17", "-O1", "-shared", "-fPIC", "-w",
                               str(source), "-o", str(partial)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"g++ could not compile the emulated kernels ({source}):\n"
                               f"{done.stderr[-4000:]}")
        partial.replace(library)  # atomic: parallel test workers never load a partial file
    return library


class EmulatedHost:
    """A kernel host for `minigrad.backends.cuda.KernelLibrary`: NumPy arrays, and CUDA
    sources compiled to run on the CPU."""

    xp = np

    def compile(self, source: str, options: tuple[str, ...]) -> EmulatedModule:
        return EmulatedModule(source, options)
