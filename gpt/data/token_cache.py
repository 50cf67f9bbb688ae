"""Token files: a corpus tokenized once, stored in the smallest unsigned dtype that holds
every id, and read back memory-mapped (the OS pages in only the windows a batch reads).

The format is NumPy's `.npy` (a short header with dtype and length, then the raw ids),
so `numpy.load(path, mmap_mode="r")` opens it anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def smallest_uint_dtype(vocab_size: int) -> np.dtype:
    """uint8 for vocabularies up to 256 ids, uint16 up to 65,536, else uint32."""
    if vocab_size <= 0:
        raise ValueError(f"token cache: vocab_size must be positive, got {vocab_size}")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"token cache: vocab_size {vocab_size} does not fit in uint32")


def save_tokens(path, ids, vocab_size: int) -> Path:
    """Write token ids to `path` (.npy) atomically; returns the path."""
    path = Path(path)
    dtype = smallest_uint_dtype(vocab_size)
    array = np.asarray(ids, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise ValueError(f"token cache: ids must lie in [0, {vocab_size}), found "
                         f"[{array.min()}, {array.max()}]")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array.astype(dtype))
    os.replace(tmp, path)
    return path


def load_tokens(path) -> np.ndarray:
    """The token ids of a file written by `save_tokens`, memory-mapped read-only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token cache: no token file at {path}")
    try:
        return np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise ValueError(f"token cache: {path} is not a valid token file ({exc}); "
                         "run `python -m gpt prepare` again") from exc
