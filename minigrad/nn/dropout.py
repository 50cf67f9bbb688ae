"""`Dropout`: zero each element with probability p in training, scale the rest by
1 / (1 - p); the identity in eval mode."""

from __future__ import annotations

from minigrad.nn import functional as F
from minigrad.nn.module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
