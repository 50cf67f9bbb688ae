"""A key/value cache for incremental decoding.

Generating token t+1 needs the keys and values of all t earlier positions in every
layer; without a cache the model recomputes them for every new token (quadratic work).
The cache keeps them in buffers of block_size positions, allocated on first use on the
model's device and dtype, so each step computes only the new token's q, k, v and its
attention over the stored keys. Inference only: the buffers are not part of any graph.
"""

from __future__ import annotations

import minigrad
from minigrad.tensor import Tensor


class LayerKV:
    """One layer's keys and values, (B, nh, max_len, hs) each, the first `length` filled;
    nh is the model's n_kv_head (under grouped-query attention fewer than its query heads,
    which is the memory it saves)."""

    def __init__(self, max_len: int):
        self.max_len = max_len
        self.length = 0
        self.keys = self.values = None

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, nh, T, hs) after the cached positions; return all of them
        (B, nh, length + T, hs)."""
        if k.requires_grad or v.requires_grad:
            raise RuntimeError("KVCache: the cache is for inference; run the model under "
                               "minigrad.no_grad()")
        B, nh, T, hs = k.shape
        end = self.length + T
        if end > self.max_len:
            raise ValueError(f"KVCache: {self.length} cached + {T} new positions exceed the "
                             f"cache size {self.max_len}")
        if self.keys is None or self.keys.shape[:2] != (B, nh) or self.keys.dtype != k.dtype:
            shape = (B, nh, self.max_len, hs)
            self.keys = minigrad.zeros(shape, dtype=k.dtype, device=k.device)
            self.values = minigrad.zeros(shape, dtype=k.dtype, device=k.device)
        self.keys[:, :, self.length:end] = k  # in place, into the preallocated buffers
        self.values[:, :, self.length:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """Per-layer caches for a model with `n_layer` blocks and contexts up to `max_len`."""

    def __init__(self, n_layer: int, max_len: int):
        self.layers = [LayerKV(max_len) for _ in range(n_layer)]

    @property
    def length(self) -> int:
        """How many positions are cached (the position of the next token)."""
        return self.layers[0].length

    def reset(self) -> None:
        """Forget the cached positions (the buffers are kept for reuse)."""
        for layer in self.layers:
            layer.length = 0
