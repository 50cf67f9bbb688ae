"""CUDA kernels for the ops that dominate a GPT training step, one Python wrapper per
.cu file.

The CUDA C sources (`<op>.cu`, with `common.cuh`) sit beside their wrappers
(`<op>.py`), are compiled at first use (NVRTC through CuPy; cached on disk by CuPy) and
work on float32 and float64 (other float types are computed in float32). `compile.py`
is what the wrappers share: source loading, per-variant compilation, C argument types.

- cross_entropy, layer_norm, gelu, attention: fused ops, in `Device.fused_ops` under the
  op's declared name (protocol: `minigrad.backends.device`)
- adamw: the optimizer primitive `Device.adamw_update`, one launch per flat buffer
- philox: counter-based random numbers (uniform, normal, integers)

The tests hold each kernel to its op's own array-API code (on the CPU emulator in
tests/cuda_emulator.py, and on a GPU). Nothing here imports CuPy: a *host* Device
supplies the array module and the compiler (`minigrad.backends.cupy.CupyDevice`, or the
emulator).
"""

from __future__ import annotations

from minigrad.backends.cuda.adamw import AdamWKernel
from minigrad.backends.cuda.attention import AttentionKernel
from minigrad.backends.cuda.compile import KernelLibrary
from minigrad.backends.cuda.cross_entropy import CrossEntropyKernel
from minigrad.backends.cuda.gelu import GeluKernel
from minigrad.backends.cuda.layer_norm import LayerNormKernel
from minigrad.backends.cuda.philox import PhiloxKernel
from minigrad.nn.functional.attention import ScaledDotProductAttention
from minigrad.nn.functional.cross_entropy import CrossEntropy
from minigrad.nn.functional.gelu import GELU
from minigrad.nn.functional.layer_norm import LayerNorm

__all__ = ["AdamWKernel", "KernelLibrary", "PhiloxKernel", "fused_ops"]

# The fused op each kernel stands in for.
FUSED = ((CrossEntropy, CrossEntropyKernel), (LayerNorm, LayerNormKernel), (GELU, GeluKernel),
         (ScaledDotProductAttention, AttentionKernel))


def fused_ops(library: KernelLibrary) -> dict:
    """The `Device.fused_ops` table for a kernel library (keys: the ops' names)."""
    return {op.name: kernel(library) for op, kernel in FUSED}
