"""Loading either kind of tokenizer from our JSON format."""

from __future__ import annotations

import os

from .char_tokenizer import CharTokenizer
from .file_format import read_document
from .tokenizer import Tokenizer

_KINDS = {"byte-bpe": Tokenizer, "char": CharTokenizer}


def load(path: str | os.PathLike[str]) -> Tokenizer | CharTokenizer:
    """The tokenizer saved at ``path`` by ``Tokenizer.save`` or ``CharTokenizer.save``."""
    kind, fields = read_document(path)
    return _KINDS[kind].from_dict(fields)
