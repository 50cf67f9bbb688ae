"""Batches of (inputs, targets) windows from a token array; targets are the inputs
shifted by one token (the next token at every position).

Two ways, both deterministic under a seed and resumable from `state_dict()`:

- `RandomWindows`: each batch takes `batch_size` windows at uniformly random offsets
  (nanoGPT's pretraining loader: cheap, no epochs, every offset equally likely).
- `SlidingWindows`: the windows start every `stride` tokens (`max_length` long, as in
  the data loader of "Build a Large Language Model (From Scratch)": stride = max_length
  gives non-overlapping windows, a smaller stride overlapping ones), visited epoch after
  epoch in a shuffled (or fixed) order.

Batches are int64 NumPy arrays on the host, (batch_size, block_size) each; the trainer
copies them to the device.
"""

from __future__ import annotations

import numpy as np


def _check_room(tokens, block_size: int, what: str) -> None:
    if block_size <= 0:
        raise ValueError(f"{what}: block size must be positive, got {block_size}")
    if len(tokens) < block_size + 1:
        raise ValueError(f"{what}: block size {block_size} is larger than the data: a window "
                         f"needs {block_size + 1} tokens (inputs plus the next token), the "
                         f"data has {len(tokens)}; use a smaller --block-size or more data")


def windows_at(tokens, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs tokens[s : s + length] and targets tokens[s + 1 : s + length + 1] per start."""
    index = starts[:, None] + np.arange(length + 1)  # (B, T + 1)
    window = np.asarray(tokens[index], dtype=np.int64)
    return window[:, :-1], window[:, 1:]


def first_window(tokens, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch of one window at offset 0: a fixed probe that draws no random numbers."""
    return windows_at(tokens, np.zeros(1, dtype=np.int64), length)


class RandomWindows:
    """Windows at random offsets, drawn from a seeded NumPy generator."""

    def __init__(self, tokens, block_size: int, batch_size: int, seed: int = 0):
        _check_room(tokens, block_size, "random windows")
        if batch_size <= 0:
            raise ValueError(f"random windows: batch size must be positive, got {batch_size}")
        self.tokens = np.asarray(tokens)  # lists too; a memory map stays one (no copy)
        self.block_size, self.batch_size = block_size, batch_size
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        starts = self.rng.integers(0, len(self.tokens) - self.block_size,
                                   size=self.batch_size)
        return windows_at(self.tokens, starts, self.block_size)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class SlidingWindows:
    """Windows starting every `stride` tokens; an epoch visits each once.

    The order of an epoch is a permutation seeded by (seed, epoch) when `shuffle`, so it
    can be rebuilt on resume from the epoch number alone. With `drop_last` an epoch ends
    before a batch that would come out short.
    """

    def __init__(self, tokens, max_length: int, stride: int, batch_size: int,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        _check_room(tokens, max_length, "sliding windows")
        if stride <= 0 or batch_size <= 0:
            raise ValueError(f"sliding windows: stride and batch size must be positive, got "
                             f"stride={stride}, batch_size={batch_size}")
        self.tokens = np.asarray(tokens)
        self.max_length, self.batch_size = max_length, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.block_size = max_length
        # The book's loop: for i in range(0, len(tokens) - max_length, stride).
        self.starts = np.arange(0, len(tokens) - max_length, stride)
        if drop_last and len(self.starts) < batch_size:
            raise ValueError(f"sliding windows: {len(self.starts)} windows (max_length "
                             f"{max_length}, stride {stride}, {len(tokens)} tokens) do not "
                             f"fill one batch of {batch_size}")
        self.epoch, self.position = 0, 0
        self._order = self._epoch_order()

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.starts), self.batch_size)
        return full + (0 if self.drop_last or not rest else 1)

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return self.starts
        return self.starts[np.random.default_rng([self.seed, self.epoch])
                           .permutation(len(self.starts))]

    def _start_next_epoch_if_done(self) -> None:
        if self.position >= len(self):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._epoch_order()

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch, moving on to a new epoch when this one is used up."""
        self._start_next_epoch_if_done()
        i = self.position * self.batch_size
        self.position += 1
        return windows_at(self.tokens, self._order[i:i + self.batch_size], self.max_length)

    def __iter__(self):
        """The rest of the current epoch (a whole new one if it is used up)."""
        self._start_next_epoch_if_done()
        while self.position < len(self):
            yield self.next_batch()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._epoch_order()
