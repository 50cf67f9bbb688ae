"""Fused CUDA kernels for the ops that dominate a GPT training step.

The CUDA C sources sit beside their Python wrappers (`<op>.cu` / `<op>.py`), are compiled
at first use (NVRTC through CuPy; cached on disk by CuPy) and work on float32 and
float64 (other float types are computed in float32):

- cross_entropy: softmax + cross-entropy with logits; saves only the row log-sum-exp
- layer_norm:    forward, input backward, weight/bias backward
- gelu:          forward and backward (exact and tanh), recomputing from x
- attention:     FlashAttention-style forward/backward (tiles, online softmax, saved lse)
- adamw:         one launch over the optimizer's flat parameter buffer
- philox:        counter-based random numbers (uniform, normal, integers)

Each has an array-API twin with the same signature in `minigrad.cuda.reference`, which
the tests compare against and which serves wherever a kernel does not apply.
`minigrad.cuda.fused_ops` turns raw kernels into the `Device.kernels` entries the fused
ops call. Nothing here imports CuPy: a *host* Device supplies the array module and the
compiler (the CuPy device in `minigrad.cuda_backend`, or the CPU emulator in the tests).
"""

from __future__ import annotations

from minigrad.cuda import reference
from minigrad.cuda.adamw import AdamWKernel
from minigrad.cuda.attention import AttentionKernel
from minigrad.cuda.cross_entropy import CrossEntropyKernel
from minigrad.cuda.fused_ops import op_kernels
from minigrad.cuda.gelu import GeluKernel
from minigrad.cuda.layer_norm import LayerNormKernel
from minigrad.cuda.loader import KernelLibrary
from minigrad.cuda.philox import PhiloxKernel

__all__ = ["build_kernels", "op_kernels"]


def build_kernels(host) -> dict:
    """Raw kernels by name for a host: a Device that also has
    ``compile(source, options) -> module`` (`module.get_function(name)` launches as
    ``kernel(grid, block, args)``, as CuPy's RawModule does)."""
    library = KernelLibrary(host)
    return {
        "cross_entropy": CrossEntropyKernel(library),
        "layer_norm": LayerNormKernel(library),
        "gelu": GeluKernel(library),
        "attention": AttentionKernel(library),
        "adamw": AdamWKernel(library, fallback=reference.adamw(host)),
        "philox": PhiloxKernel(library),
    }
