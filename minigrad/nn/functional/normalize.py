"""normalize(x, p, dim, eps): x / max(||x||_p, eps) along dim, as F.normalize (built from
the norm, clip and div ops, whose backwards make its own)."""

from __future__ import annotations

from minigrad.ops.reductions import norm
from minigrad.tensor import Tensor


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    return x / norm(x, p, dim, keepdim=True).clip(min=eps)
