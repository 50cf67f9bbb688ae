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

BLOCK_BYTES = 1 << 24


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


def save_token_range(path, source, start: int, count: int, vocab_size: int) -> Path:
    """Write ids [start, start + count) of `source`, a raw file of ids in the dtype for
    `vocab_size`, as a token file, atomically and a block at a time (for corpora larger
    than memory); returns the path."""
    path = Path(path)
    dtype = id_dtype(vocab_size)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (count,)}
    with atomic_write(path) as f, open(source, "rb") as ids:
        np.lib.format.write_array_header_1_0(f, header)
        ids.seek(start * dtype.itemsize)
        left = count * dtype.itemsize
        while left:
            block = ids.read(min(left, BLOCK_BYTES))
            if not block:
                raise ValueError(f"token cache: {source} ends before id {start + count}")
            f.write(block)
            left -= len(block)
    return path


def max_token(path) -> int:
    """The largest id in a token file (-1 if it is empty), read a block at a time rather
    than through the memory map, which would keep the whole file resident."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _, _, dtype = read_header(f)
        top = -1
        while len(block := np.fromfile(f, dtype=dtype, count=BLOCK_BYTES // dtype.itemsize)):
            top = max(top, int(block.max()))
    return top


def load_tokens(path) -> np.ndarray:
    """The token ids of a file written by `save_tokens`, memory-mapped read-only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token cache: no token file at {path}")
    try:
        tokens = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise ValueError(f"token cache: {path} is not a valid token file ({exc}); "
                         "run `python -m gpt prepare` again") from exc
    if tokens.ndim != 1 or tokens.dtype.kind != "u":  # save_tokens writes nothing else
        raise ValueError(f"token cache: {path} holds a {tokens.dtype} array of shape "
                         f"{tokens.shape}, not a row of unsigned token ids; run `python -m "
                         "gpt prepare` again")
    return tokens
