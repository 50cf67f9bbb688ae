"""Decoding token ids to text as they arrive (e.g. while a model samples).

A byte-level token can end in the middle of a UTF-8 sequence, so decoding each token on its
own would print replacement characters for text that is in fact fine. The stream decoder
holds back an incomplete sequence at the end of what has arrived until the rest comes.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from numbers import Integral


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
