"""Byte-level BPE in its plainest form: read this module first.

Training starts from the 256 single bytes as tokens (token ``b`` is the byte ``b``). It cuts
the text into chunks with the split pattern (merges never cross a chunk), then repeats: count
every adjacent pair of tokens in every chunk, merge the most frequent pair into a new token
(ids 256, 257, ...), and replace it everywhere, left to right. ``aaa`` holds the pair
``(a, a)`` twice in the count, and becomes ``aa a`` when it is merged.

Ties between equally frequent pairs go to the pair whose (left, right) tokens come first in
token order; merged tokens come after all single bytes, in order of creation, and single
bytes are ordered by ``tie_break``: ``"huggingface"`` (the default, as in
:mod:`bpe.training`: by their character in GPT-2's byte alphabet, which reproduces Hugging
Face's ``BpeTrainer``) or ``"byte-value"``.

Encoding uses tiktoken's rule: a chunk that is a token is that token; otherwise, starting
from single bytes, merge the adjacent pair whose concatenation is the token of lowest id
(the leftmost on ties) until no adjacent concatenation is a token.

This is slow (every merge recounts every pair) but it is the definition: the tests check the
fast trainer (:mod:`bpe.training`) and encoder (:mod:`bpe.encoding`) against it.
"""

from __future__ import annotations

from collections import Counter

from .patterns import SplitPattern
from .training import TIE_BREAKS


def train(texts: list[str], vocab_size: int, pattern: str = "gpt2",
          tie_break: str = "huggingface") -> list[tuple[int, int]]:
    """The merges learned from ``texts``: merge ``k`` joins a pair into token ``256 + k``."""
    split = SplitPattern.resolve(pattern).split
    # Each distinct chunk as a tuple of token ids (its bytes, to begin with), and its count.
    chunks = Counter(tuple(chunk.encode("utf-8")) for text in texts for chunk in split(text))
    byte_position = {byte: index for index, byte in enumerate(TIE_BREAKS[tie_break])}

    def order(token: int) -> int:
        return byte_position[token] if token < 256 else token

    merges: list[tuple[int, int]] = []
    while 256 + len(merges) < vocab_size:
        pairs: Counter[tuple[int, int]] = Counter()
        for ids, count in chunks.items():
            for pair in zip(ids, ids[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], order(pair[0]), order(pair[1])))
        new_token = 256 + len(merges)
        merged: Counter[tuple[int, ...]] = Counter()
        for ids, count in chunks.items():
            merged[replace_pair(ids, best, new_token)] += count
        chunks = merged
        merges.append(best)
    return merges


def replace_pair(ids: tuple[int, ...], pair: tuple[int, int], new_token: int) -> tuple[int, ...]:
    """``ids`` with each occurrence of ``pair``, left to right, replaced by ``new_token``."""
    out, i = [], 0
    while i < len(ids):
        if ids[i : i + 2] == pair:
            out.append(new_token)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return tuple(out)


def ranks_from_merges(merges: list[tuple[int, int]]) -> dict[bytes, int]:
    """The vocabulary as ranks: the bytes of every token and its id."""
    token_bytes = [bytes([byte]) for byte in range(256)]
    for left, right in merges:
        token_bytes.append(token_bytes[left] + token_bytes[right])
    return {data: token for token, data in enumerate(token_bytes)}


def encode(text: str, ranks: dict[bytes, int], pattern: str = "gpt2") -> list[int]:
    """The token ids of ``text`` (no special tokens), chunk by chunk."""
    ids: list[int] = []
    for chunk in SplitPattern.resolve(pattern).split(text):
        ids += encode_chunk(chunk.encode("utf-8"), ranks)
    return ids


def encode_chunk(data: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The token ids of one chunk's bytes, by tiktoken's rule."""
    if data in ranks:
        return [ranks[data]]
    parts = [data[i : i + 1] for i in range(len(data))]
    while True:
        # (id of the joined token, position) for each adjacent pair that joins into a token.
        joinable = [(ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:]))
                    if a + b in ranks]
        if not joinable:
            return [ranks[part] for part in parts]
        _, i = min(joinable)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
