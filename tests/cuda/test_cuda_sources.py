"""The CUDA sources as files: every kernel the Python wrappers launch is defined in its
.cu file (one wrapper per file), the loader pastes local includes, attention's tiles fit
the shared-memory budget, and (where nvcc is installed) every file compiles for a real
GPU in each variant the wrappers build."""

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from minigrad.backends.cuda import FUSED, AdamWKernel, PhiloxKernel
from minigrad.backends.cuda import compile as loader
from minigrad.backends.cuda.attention import SHARED_BYTES, tiles
from minigrad.backends.cuda.compile import NATIVE

NVCC = shutil.which("nvcc") or next(
    (path for path in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(path)), None)
LIBRARY = loader.KernelLibrary(type("Host", (), {"xp": None, "compile": None})())
WRAPPERS = [kernel(LIBRARY) for kernel in (*(k for _, k in FUSED), AdamWKernel, PhiloxKernel)]


def test_every_launched_kernel_is_defined_in_its_source():
    sources = set()
    for wrapper in WRAPPERS:
        defined = loader.kernel_names(wrapper.source)
        assert set(wrapper.kernels) == set(defined), wrapper.source
        assert wrapper.source not in sources  # one wrapper per file
        sources.add(wrapper.source)
    cu_files = {path.name for path in loader.SOURCE_DIR.glob("*.cu")}
    assert sources == cu_files  # no source file without a wrapper


def test_loader_pastes_the_common_header_once_per_file():
    text = loader.read_source("layer_norm.cu")
    assert '#include "common.cuh"' not in text
    assert text.count("__device__ scalar_t block_sum(") == 1


def test_unknown_kernel_names_are_refused():
    library = loader.KernelLibrary(type("Host", (), {"xp": None})())
    with pytest.raises(ValueError, match="no kernel 'layer_norm_fwd' in layer_norm.cu"):
        library.function("layer_norm.cu", "layer_norm_fwd")


def test_attention_tiles_fit_the_shared_memory_budget():
    for head_dim in range(1, 300):
        for itemsize in (4, 8):
            t = tiles(head_dim, itemsize)
            if t is None:
                assert head_dim * itemsize > 256 * 4  # only huge heads are declined
                continue
            forward = t["FWD_BM"] * (head_dim + 1) + 2 * t["FWD_BN"] * head_dim
            assert max(forward, t["BWD_B"] * (4 * head_dim + 4)) * itemsize <= SHARED_BYTES
    assert tiles(64, 4) == {"HEAD_DIM": 64, "FWD_BM": 64, "FWD_BN": 32, "BWD_B": 32}


def test_gelu_constants_come_from_the_op():
    from minigrad.backends.cuda.gelu import GeluKernel
    from minigrad.nn.functional.gelu import GELU_CUBIC, SQRT_2_OVER_PI

    assert float(GeluKernel.defines["GELU_CUBIC"]) == GELU_CUBIC
    assert float(GeluKernel.defines["SQRT_2_OVER_PI"]) == SQRT_2_OVER_PI
    assert "#define GELU_CUBIC" not in loader.read_source("gelu.cu")


def _variants():
    """(file, defines) for each element type the wrappers compile. Attention is compiled
    at head size 16: unrolled over D = 64 it takes nvcc ~10 s."""
    for wrapper in WRAPPERS:
        if wrapper.source == "philox.cu":
            yield wrapper.source, dict(wrapper.defines)
            continue
        for c_type in NATIVE.values():
            defines = {**wrapper.defines, "SCALAR_T": c_type}
            if wrapper.source == "attention.cu":
                defines.update(tiles(16, 8 if c_type == "double" else 4))
            yield wrapper.source, defines


def _attention_shared_bytes(defines: dict) -> dict:
    """Shared memory per attention kernel by the formula `tiles` budgets with."""
    d, bm, bn, b = (defines[k] for k in ("HEAD_DIM", "FWD_BM", "FWD_BN", "BWD_B"))
    size = 8 if defines["SCALAR_T"] == "double" else 4
    return {"attention_forward": (bm * (d + 1) + 2 * bn * d) * size,
            "attention_backward_dkdv": b * (4 * d + 4) * size,
            "attention_backward_dq": b * (4 * d + 2) * size}


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (CUDA toolkit not installed)")
def test_sources_compile_with_nvcc(tmp_path):
    """nvcc -cubin runs ptxas too, which rejects e.g. tiles past the shared memory; its
    report of each kernel's shared memory must match the budget `tiles` plans with."""

    def compile_variant(job):
        index, (name, defines) = job
        command = [NVCC, "-cubin", "-arch=sm_80", "-Xptxas", "-v",
                   "-o", str(tmp_path / f"{index}.cubin"),
                   *(f"-D{k}={v}" for k, v in defines.items()), str(loader.SOURCE_DIR / name)]
        done = subprocess.run(command, capture_output=True, text=True)
        return name, defines, done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compile_variant, enumerate(_variants())))
    failed = [f"{name} {defines}:\n{err}" for name, defines, code, err in results if code]
    assert not failed, "\n".join(failed)
    for name, defines, _, report in results:
        if name == "attention.cu":
            for kernel, expected in _attention_shared_bytes(defines).items():
                match = re.search(rf"Function properties for {kernel}\n.*?"
                                  rf"Used \d+ registers.*?(\d+) bytes smem", report, re.S)
                assert match and int(match.group(1)) == expected, (kernel, defines)
    assert len(results) == 11
