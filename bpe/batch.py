"""Encoding many texts, or one very long text, on all cores.

Texts are cut into pieces only where the split pattern guarantees the same chunks (see
:meth:`SplitPattern.cut`) and never inside an allowed special token, so the ids are exactly
those of encoding each text whole. The pieces are encoded by worker processes that each hold
a copy of the tokenizer and send back compact NumPy arrays. Inputs below
``PARALLEL_MIN_CHARS`` stay in this process, where starting workers would cost more than it
saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from .id_arrays import to_id_array
from .workers import resolve_workers

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

PARALLEL_MIN_CHARS = 1 << 20
PIECE_CHARS = 1 << 18

_worker_tokenizer: Tokenizer | None = None


def encode_texts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    allowed: frozenset[str],
    *,
    num_workers: int | None,
    as_numpy: bool,
) -> list[list[int]] | list[np.ndarray]:
    """Encode each text with the ``allowed`` special tokens (disallowed ones already checked)."""
    workers = resolve_workers(num_workers)
    if workers == 1 or sum(map(len, texts)) < PARALLEL_MIN_CHARS:
        encoded = [tokenizer._encode_allowing(text, allowed) for text in texts]
        if as_numpy:
            return [to_id_array(ids, tokenizer.vocab_size) for ids in encoded]
        return encoded
    pieces, owners = [], []
    for index, text in enumerate(texts):
        for piece in _cut(tokenizer, text, allowed):
            pieces.append(piece)
            owners.append(index)
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(tokenizer,)) as pool:
        arrays = list(pool.map(_encode_piece, pieces, [allowed] * len(pieces)))
    per_text: list[list[np.ndarray]] = [[] for _ in texts]
    for owner, array in zip(owners, arrays):
        per_text[owner].append(array)
    empty = to_id_array([], tokenizer.vocab_size)
    joined = [np.concatenate(parts) if parts else empty for parts in per_text]
    return joined if as_numpy else [array.tolist() for array in joined]


def _cut(tokenizer: Tokenizer, text: str, allowed: frozenset[str]) -> list[str]:
    """``text`` cut at the pattern's safe places, except inside allowed special tokens."""
    avoid = tokenizer._specials.within(text, allowed) if allowed else None
    return tokenizer.pattern.cut(text, PIECE_CHARS, avoid)


def _start_worker(tokenizer: Tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_piece(piece: str, allowed: frozenset[str]) -> np.ndarray:
    assert _worker_tokenizer is not None
    ids = _worker_tokenizer._encode_allowing(piece, allowed)
    return to_id_array(ids, _worker_tokenizer.vocab_size)
