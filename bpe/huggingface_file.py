"""Export to a Hugging Face ``tokenizer.json`` that encodes like this package.

- Pre-tokenizer: ``Split`` on the pattern (matches isolated), then ``ByteLevel`` without its
  own regex, which writes each chunk's bytes in the GPT-2 alphabet.
- Model: ``BPE`` with ``ignore_merges`` (a chunk that is a token becomes that token, as in
  tiktoken) and a merge list derived from the ranks: every way to split each token into two
  tokens, ordered by the token's rank, then by the ranks of the parts. Hugging Face's rule
  (merge the pair listed first) then matches tiktoken's (merge the pair whose concatenation
  has the lowest rank), so the export works for a vocabulary given only as ranks.
  One corner can still differ: when two *different* pairs that spell the same token overlap
  in a chunk (``ab|a|ba``), tiktoken merges the leftmost and Hugging Face the one listed first.
- Special tokens become added tokens, matched in text before the pre-tokenizer.

The split regex is run by Oniguruma in Hugging Face; the named patterns mean the same there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from .byte_alphabet import bytes_to_chars


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Every split of every token into two tokens, ordered as described above."""
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda item: item[1]):
        splits = [
            (token[:cut], token[cut:])
            for cut in range(1, len(token))
            if token[:cut] in ranks and token[cut:] in ranks
        ]
        splits.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges.extend(splits)
    return merges


def write_tokenizer_json(
    path: str | os.PathLike[str],
    ranks: Mapping[bytes, int],
    special_tokens: Mapping[str, int],
    pattern: str,
) -> None:
    """Write the ``tokenizer.json`` described in the module docstring."""
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": token_id,
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for token, token_id in sorted(special_tokens.items(), key=lambda item: item[1])
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                    "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {bytes_to_chars(token): rank for token, rank in ranks.items()},
            "merges": [
                [bytes_to_chars(left), bytes_to_chars(right)]
                for left, right in merges_from_ranks(ranks)
            ],
        },
    }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(document, file, ensure_ascii=False)
