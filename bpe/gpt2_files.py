"""GPT-2's original vocabulary files: ``encoder.json`` and ``vocab.bpe``.

``encoder.json`` maps tokens, written in the GPT-2 byte alphabet, to ids; ``vocab.bpe`` lists
the merges in rank order, one ``left right`` pair per line after a ``#version`` line. A token
that is neither a single byte nor the result of a merge (``<|endoftext|>``) is special.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .byte_alphabet import CHAR_TO_BYTE, chars_to_bytes


@dataclass(frozen=True)
class Gpt2Vocabulary:
    """Ranks (bytes to id), special tokens (str to id) and merges (pairs of ids)."""

    ranks: dict[bytes, int]
    special_tokens: dict[str, int]
    merges: list[tuple[int, int]]


def read_gpt2_files(
    encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str]
) -> Gpt2Vocabulary:
    """Read the two files into ranks, special tokens and merges."""
    with open(encoder_json, encoding="utf-8") as file:
        encoder: dict[str, int] = json.load(file)
    with open(vocab_bpe, encoding="utf-8") as file:
        merge_lines = file.read().splitlines()
    merges, merged = [], set()
    for number, line in enumerate(merge_lines, start=1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or any(part not in encoder for part in parts):
            raise ValueError(
                f"{os.fspath(vocab_bpe)!r} line {number} is not a merge of two tokens of "
                f"{os.fspath(encoder_json)!r}: {line!r}"
            )
        merges.append((encoder[parts[0]], encoder[parts[1]]))
        merged.add(parts[0] + parts[1])
    ranks, special_tokens = {}, {}
    for token, token_id in encoder.items():
        if token in merged or token in CHAR_TO_BYTE:
            ranks[chars_to_bytes(token)] = token_id
        else:
            special_tokens[token] = token_id
    return Gpt2Vocabulary(ranks, special_tokens, merges)
