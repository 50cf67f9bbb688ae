"""Run minigrad's CUDA kernels on the CPU, so CI tests the kernel code without a GPU.

A kernel source is compiled as C++ (g++, C++20) with a prelude that supplies what CUDA C
provides: `threadIdx`/`blockIdx` (thread-local), `blockDim`/`gridDim`, `__shared__`
(function statics: blocks run one after another), `__syncthreads` (a barrier across the
block's threads), `__shfl_xor_sync` (an exchange through a per-warp barrier) and the few
intrinsics the kernels use. Every CUDA thread of a block is a real OS thread, so missing
or divergent barriers show up: a barrier that not every thread reaches within a few
seconds fails the launch instead of hanging.

`EmulatedCudaDevice` is a NumPy device that also plays the kernel host (`compile`,
`pointer`, `upload`), so `minigrad.cuda.build_kernels` wraps the emulated kernels exactly
as it wraps CuPy's. Launches check every argument against the kernel's C signature (an
array of the right element type for a pointer, a NumPy scalar of the exact type for a
value), the checks CuPy cannot make: it would pass a Python float as a double.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from minigrad.backend import NumpyDevice

COMPILER = shutil.which("g++")
CACHE_DIR = Path(tempfile.gettempdir()) / "minigrad-cuda-emulator"

_C_TYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64,
            "unsigned int": np.uint32, "unsigned long long": np.uint64}

PRELUDE = r"""
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict

namespace emu {
struct Deadlock {};
struct Unsupported {};

// A reusable barrier that fails (in every waiting thread) when not all threads arrive.
// Plain pthreads: the prelude stays cheap to compile.
struct Barrier {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int n, count;
    long generation;
    bool broken;

    void init(int threads) {
        pthread_mutex_init(&mutex, nullptr);
        pthread_cond_init(&cond, nullptr);
        n = threads; count = 0; generation = 0; broken = false;
    }
    void destroy() { pthread_mutex_destroy(&mutex); pthread_cond_destroy(&cond); }
    void wait() {
        pthread_mutex_lock(&mutex);
        const long mine = generation;
        if (!broken && ++count == n) {
            count = 0;
            ++generation;
            pthread_cond_broadcast(&cond);
            pthread_mutex_unlock(&mutex);
            return;
        }
        timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        int status = 0;
        while (!broken && generation == mine && status != ETIMEDOUT)
            status = pthread_cond_timedwait(&cond, &mutex, &deadline);
        const bool failed = broken || generation == mine;
        if (failed) {
            broken = true;
            pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&mutex);
        if (failed) throw Deadlock();
    }
};

struct Warp {
    int size;
    Barrier barrier;
    unsigned char slots[32][8];
};

Barrier block_barrier;
Warp warps[32];

inline int linear_thread() {
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

template <class Body>
struct ThreadStart {
    Body* body;
    dim3 block_index;
    int thread;
    int status;
};

template <class Body>
void* run_thread(void* arg) {
    ThreadStart<Body>* start = static_cast<ThreadStart<Body>*>(arg);
    const int t = start->thread;
    threadIdx = dim3{t % blockDim.x, (t / blockDim.x) % blockDim.y,
                     t / (blockDim.x * blockDim.y)};
    blockIdx = start->block_index;
    try { (*start->body)(); } catch (Deadlock&) { start->status = 1; } catch (...) { start->status = 2; }
    return nullptr;
}

template <class Body>
int launch(dim3 grid, dim3 block, Body body) {
    gridDim = grid;
    blockDim = block;
    const int n = block.x * block.y * block.z;
    if (n > 1024) return 2;
    static ThreadStart<Body> starts[1024];
    static pthread_t threads[1024];
    for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
        block_barrier.init(n);
        for (int w = 0; w * 32 < n; ++w) {
            warps[w].size = n - w * 32 < 32 ? n - w * 32 : 32;
            warps[w].barrier.init(warps[w].size);
        }
        for (int t = 0; t < n; ++t) {
            starts[t] = ThreadStart<Body>{&body, dim3{bx, by, bz}, t, 0};
            pthread_create(&threads[t], nullptr, run_thread<Body>, &starts[t]);
        }
        int failure = 0;
        for (int t = 0; t < n; ++t) {
            pthread_join(threads[t], nullptr);
            if (starts[t].status) failure = starts[t].status;
        }
        block_barrier.destroy();
        for (int w = 0; w * 32 < n; ++w) warps[w].barrier.destroy();
        if (failure) return failure;
    }
    return 0;
}
}  // namespace emu

inline void __syncthreads() { emu::block_barrier.wait(); }

template <class T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask) {
    emu::Warp& warp = emu::warps[emu::linear_thread() / 32];
    if (mask != 0xffffffffu || warp.size != 32) throw emu::Unsupported();  // full warps only
    const int lane = emu::linear_thread() % 32;
    memcpy(warp.slots[lane], &value, sizeof(T));
    warp.barrier.wait();
    T out;
    memcpy(&out, warp.slots[lane ^ lane_mask], sizeof(T));
    warp.barrier.wait();
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
            raise RuntimeError(f"{self.name}: the launch failed ("
                               f"{'a barrier not reached by every thread' if status == 1 else 'an exception'})")


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
        text = PRELUDE + defines + source + "\n" + "".join(wrappers)
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
        partial = CACHE_DIR / f"{digest}.{id(text)}.so"
        subprocess.run([COMPILER, "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread", "-w",
                        str(source), "-o", str(partial)], check=True, capture_output=True,
                       text=True)
        partial.replace(library)  # atomic: parallel test workers never load a partial file
    return library


class EmulatedCudaDevice(NumpyDevice):
    """A NumPy device that is also a kernel host running the CUDA sources on the CPU."""

    def compile(self, source: str, options: tuple[str, ...]) -> EmulatedModule:
        return EmulatedModule(source, options)

    def pointer(self, array) -> int:
        return array.ctypes.data

    def upload(self, host_array):
        return np.array(host_array)
