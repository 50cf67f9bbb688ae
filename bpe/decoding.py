"""Token ids back to bytes and text, all at once or as they arrive.

- :class:`TokenTable` holds the bytes of every id. Short id sequences are joined from a dict
  of bytes; long ones are gathered with NumPy from one buffer holding every token's bytes
  (with each id's offset and length), which avoids creating and joining a bytes object per
  token and is several times faster.
- :class:`StreamDecoder` decodes ids as they arrive (e.g. while a model samples). A
  byte-level token can end in the middle of a UTF-8 sequence, so decoding each token on its
  own would print replacement characters for text that is in fact fine; the stream decoder
  holds back an incomplete sequence at the end of what has arrived until the rest comes.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral

import numpy as np

GATHER_MIN_IDS = 4096
_GATHER_BLOCK_IDS = 1 << 18


class TokenTable:
    """The bytes of every token id (BPE tokens and special tokens)."""

    def __init__(self, token_bytes: Mapping[int, bytes]) -> None:
        self._bytes = dict(token_bytes)
        self.size = max(self._bytes) + 1
        self._lengths = np.full(self.size, -1, dtype=np.int64)
        self._offsets = np.zeros(self.size, dtype=np.int64)
        ids = sorted(self._bytes)
        lengths = np.array([len(self._bytes[token]) for token in ids], dtype=np.int64)
        self._lengths[ids] = lengths
        self._offsets[ids] = np.cumsum(lengths) - lengths
        self._buffer = np.frombuffer(b"".join(self._bytes[token] for token in ids), np.uint8)

    def __contains__(self, token: object) -> bool:
        return token in self._bytes

    def join(self, ids: Iterable[int]) -> bytes:
        """The concatenated bytes of ``ids``; ValueError names the first invalid id."""
        if not isinstance(ids, (list, tuple, np.ndarray)):
            ids = list(ids)
        if isinstance(ids, np.ndarray) or len(ids) >= GATHER_MIN_IDS:
            return self._gather(np.asarray(ids))
        try:
            data = b"".join(map(self._bytes.__getitem__, ids))
        except (KeyError, TypeError):
            raise self._invalid(ids) from None
        if not set(map(type, ids)) <= {int}:  # 1.0 or True would find token 1
            for token in ids:
                if isinstance(token, bool) or not isinstance(token, Integral):
                    raise ValueError(f"cannot decode token id {token!r}: ids must be ints "
                                     f"below {self.size}")
        return data

    def _gather(self, array: np.ndarray) -> bytes:
        if array.size == 0:
            return b""
        if array.dtype.kind not in "iu" or array.ndim != 1:
            raise ValueError(
                f"token ids must be a flat sequence of ints, got {array.ndim}-d {array.dtype}"
            )
        lengths = self._lengths[np.clip(array, 0, self.size - 1)]
        if array.min() < 0 or array.max() >= self.size or lengths.min() < 0:
            raise self._invalid(array.tolist())
        blocks = []
        for start in range(0, array.size, _GATHER_BLOCK_IDS):
            block = array[start : start + _GATHER_BLOCK_IDS]
            block_lengths = lengths[start : start + _GATHER_BLOCK_IDS]
            ends = np.cumsum(block_lengths)
            # Output byte p of token k is buffer[offset[k] + p - (ends[k] - length[k])].
            shift = np.repeat(ends - block_lengths - self._offsets[block], block_lengths)
            blocks.append(self._buffer[np.arange(ends[-1]) - shift].tobytes())
        return b"".join(blocks)

    def _invalid(self, ids: Iterable[object]) -> ValueError:
        bad = next(token for token in ids if isinstance(token, bool) or token not in self._bytes)
        if isinstance(bad, Integral) and not isinstance(bad, bool) and 0 <= bad < self.size:
            holes = self.size - len(self._bytes)
            return ValueError(
                f"cannot decode token id {bad!r}: it is a hole in this vocabulary, no token has "
                f"that id (ids below {self.size} without a token: {holes})"
            )
        return ValueError(f"cannot decode token id {bad!r}: ids must be ints below {self.size}")



def check_errors(errors: str) -> str:
    """Validate a codec error handler name such as ``"replace"`` or ``"strict"``."""
    try:
        codecs.lookup_error(errors)
    except (LookupError, TypeError):
        raise ValueError(
            f"errors must be a codec error handler such as 'replace' or 'strict', got {errors!r}"
        ) from None
    return errors


class StreamDecoder:
    """Incremental ids-to-text decoding; call :meth:`feed` repeatedly, then :meth:`finish`."""

    def __init__(self, decode_bytes: Callable[[Iterable[int]], bytes], errors: str = "replace"):
        self._decode_bytes = decode_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(check_errors(errors))

    def feed(self, ids: int | Iterable[int]) -> str:
        """The text completed by ``ids`` (one id or several); may be empty."""
        data = self._decode_bytes([ids] if isinstance(ids, Integral) else ids)
        return self._utf8.decode(data)

    def finish(self) -> str:
        """The end of the stream: bytes still held back, decoded with the error handler."""
        return self._utf8.decode(b"", final=True)
