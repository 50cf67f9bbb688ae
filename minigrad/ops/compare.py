"""Comparisons: elementwise, boolean results, no gradient."""

from __future__ import annotations

from minigrad.ops._util import is_scalar
from minigrad.tensor import Tensor


def compare(name: str, a: Tensor, b) -> Tensor:
    """name: an array API comparison ('equal', 'less', ...)."""
    other = b if is_scalar(b) else (b.data if isinstance(b, Tensor) else a.device.asarray(b))
    out = getattr(a.device.xp, name)(a.data, other)
    return Tensor._from_op(out, a.device, None, 0, False)
