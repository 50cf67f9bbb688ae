"""Token ids as NumPy arrays of the smallest unsigned dtype that holds the vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def id_dtype(vocab_size: int) -> np.dtype:
    """uint8, uint16, uint32 or uint64: the smallest that holds ids below ``vocab_size``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def to_id_array(ids: Sequence[int], vocab_size: int) -> np.ndarray:
    """``ids`` as a 1-D array of :func:`id_dtype` for ``vocab_size``."""
    return np.array(ids, dtype=id_dtype(vocab_size))
