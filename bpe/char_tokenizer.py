"""A character-level tokenizer with the same interface, for tiny character models.

Its vocabulary is the set of distinct characters of a text, sorted by code point; a
character's id is its position. Text containing any other character cannot be encoded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .encoding import id_dtype
from .files import read_document, write_document


class CharTokenizer:
    """One token per character, over a fixed alphabet."""

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"chars must be single characters, got {char!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must be distinct")
        if not chars:
            raise ValueError("chars must not be empty")
        self._chars = chars
        codes = np.array(list(map(ord, chars)), dtype=np.uint32)
        self._order = np.argsort(codes)  # ids by code point, for a binary search
        self._codes = codes[self._order]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose alphabet is the distinct characters of ``text``."""
        if not isinstance(text, str) or not text:
            raise ValueError("from_text needs a non-empty str")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self._chars)

    @property
    def chars(self) -> list[str]:
        """The alphabet in id order (a copy)."""
        return list(self._chars)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Always empty: a character tokenizer has no special tokens."""
        return {}

    @property
    def eot(self) -> None:
        """Always None: a character tokenizer has no end-of-text token."""
        return None

    def encode(self, text: str) -> list[int]:
        """The id of each character of ``text``."""
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """The ids of ``text`` as an array of the smallest unsigned dtype that holds them
        (one vectorized lookup, for corpora of gigabytes)."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        positions = np.minimum(np.searchsorted(self._codes, codes), len(self._codes) - 1)
        unknown = self._codes[positions] != codes
        if unknown.any():
            char = chr(codes[np.argmax(unknown)])
            raise ValueError(f"character {char!r} is not in this tokenizer's alphabet")
        return self._order[positions].astype(id_dtype(len(self._chars)))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        ids = list(ids)
        if ids and (min(ids) < 0 or max(ids) >= len(self._chars)):
            bad = next(i for i in ids if not 0 <= i < len(self._chars))
            raise ValueError(f"cannot decode token id {bad}: ids must be below {self.vocab_size}")
        return "".join(map(self._chars.__getitem__, ids))

    def to_dict(self) -> dict[str, Any]:
        """The fields of our JSON file format (see :mod:`bpe.files`)."""
        return {"chars": list(self._chars)}

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> CharTokenizer:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(fields.get("chars"), list):
            raise ValueError("malformed char tokenizer fields: 'chars' must be a list")
        return cls(fields["chars"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save in our JSON format."""
        write_document(path, "char", self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        """Load a file written by :meth:`save`."""
        kind, fields = read_document(path)
        if kind != "char":
            raise ValueError(f"{os.fspath(path)!r} holds a {kind!r} tokenizer; use bpe.load()")
        return cls.from_dict(fields)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
