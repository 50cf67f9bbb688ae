"""Token files: a corpus tokenized once, stored in the smallest unsigned dtype that holds
every id, and read back memory-mapped (the OS pages in only the windows a batch reads).

The format is NumPy's `.npy` (a short header with dtype and length, then the raw ids),
so `numpy.load(path, mmap_mode="r")` opens it anywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpe import id_dtype
from minigrad.io.atomic import atomic_write


def save_tokens(path, ids, vocab_size: int) -> Path:
    """Write token ids to `path` (.npy) atomically; returns the path."""
    path = Path(path)
    dtype = id_dtype(vocab_size)
    array = np.asarray(ids, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise ValueError(f"token cache: ids must lie in [0, {vocab_size}), found "
                         f"[{array.min()}, {array.max()}]")
    with atomic_write(path) as f:
        np.save(f, array.astype(dtype))
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
