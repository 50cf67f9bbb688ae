"""pad(x, pad, value): constant padding of the last dims, as F.pad(mode="constant").

`pad` lists (before, after) amounts from the last dim backwards: (1, 2) pads the last
dim with 1 value before and 2 after; (1, 2, 0, 3) also pads the dim before it with 3
after. The backward takes the gradient of the original block back out of g."""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.tensor import Tensor


class Pad(Function):
    def __init__(self, widths: tuple, value):
        self.widths, self.value = widths, value  # (before, after) per dim, first dim first

    def forward(self, a):
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, self.widths))
        self.block = tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, self.widths))
        out = self.device.full(shape, self.value, a.dtype)
        out[self.block] = a
        return out

    def backward(self, g):
        return g[self.block]


def pad(x: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim or any(
            isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in pad):
        raise ValueError(f"pad: pad {pad} must be pairs of non-negative ints, at most one "
                         f"pair per dim of shape {x.shape}")
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]  # last dim first
    widths = ((0, 0),) * (x.ndim - len(pairs)) + tuple(reversed(pairs))
    return Pad(widths, value)(x)
