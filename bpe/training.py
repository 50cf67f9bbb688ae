"""Learning byte-pair merges from chunk counts: the core of training.

Every distinct chunk becomes a *word*: a str with one character per token id (``chr(id)``),
so that finding and replacing a pair inside a word are single C-level str operations. Between
merges the trainer keeps

- ``pair_counts``: occurrences of each adjacent pair of ids, summed over the words weighted
  by their counts (overlapping occurrences such as the two in ``aaa`` both count, as in
  Hugging Face's trainer);
- ``pair_words``: for each pair, the words that may contain it (stale entries are skipped);
- a heap of ``(-count, pair)`` with lazy updates: an entry is pushed when a pair's count
  grows, and a popped entry whose count is out of date is pushed back with the current one.

A merge therefore costs time in proportion to the words that contain its pair, not to the
corpus. Counts are Python ints, which never overflow.

Ties: the most frequent pair wins; among equally frequent pairs, the one whose (left, right)
tokens come first in token order, where merged tokens follow all single bytes in order of
creation and single bytes are ordered by ``tie_break``:

- ``"huggingface"``: by their character in the GPT-2 byte alphabet, which is how Hugging
  Face's ``BpeTrainer`` numbers them; this mode reproduces its merges exactly.
- ``"byte-value"``: by byte value, i.e. the pair with the smallest ids of this package.

Every merge makes a new token: the occurrences of a token's bytes that are whole tokens
themselves always got the same merges, so no later pair can spell an existing token. Training
stops early when no pair is left or the best pair occurs fewer than ``min_frequency`` times.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

from .byte_alphabet import BYTES_IN_CHAR_ORDER
from .progress import ProgressCallback

TIE_BREAKS = {"huggingface": BYTES_IN_CHAR_ORDER, "byte-value": list(range(256))}

# Token ids live in str characters, so they must stay below the last code point.
MAX_TOKENS = 0x110000


@dataclass(frozen=True)
class LearnedMerges:
    """The tokens by id (byte ``b`` is token ``b``, merged tokens from 256) and the merges.

    ``merges[k] = (left, right)`` is the k-th pair merged; it made token ``256 + k``.
    """

    token_bytes: list[bytes]
    merges: list[tuple[int, int]]


def learn_merges(
    chunk_counts: Mapping[str, int],
    *,
    num_tokens: int,
    min_frequency: int = 1,
    tie_break: str = "huggingface",
    progress: ProgressCallback | None = None,
) -> LearnedMerges:
    """Merge pairs until there are ``num_tokens`` tokens (or no pair qualifies)."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {sorted(TIE_BREAKS)}, got {tie_break!r}")
    if not 256 < num_tokens <= MAX_TOKENS:
        raise ValueError(f"num_tokens must be in 257..{MAX_TOKENS}, got {num_tokens}")
    byte_order = TIE_BREAKS[tie_break]
    words, counts = _words(chunk_counts, byte_order)
    token_bytes = [bytes([byte]) for byte in byte_order]
    merges = _merge_loop(words, counts, token_bytes, num_tokens, min_frequency, progress)

    def external(token: int) -> int:
        return byte_order[token] if token < 256 else token

    return LearnedMerges(
        token_bytes=[bytes([byte]) for byte in range(256)] + token_bytes[256:],
        merges=[(external(left), external(right)) for left, right in merges],
    )


def _words(chunk_counts: Mapping[str, int], byte_order: list[int]) -> tuple[list[str], list[int]]:
    """Each chunk of two or more bytes as a word of internal byte ids, with its count."""
    to_internal = bytes.maketrans(bytes(byte_order), bytes(range(256)))
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        data = chunk.encode("utf-8")
        if len(data) > 1:
            words.append(data.translate(to_internal).decode("latin-1"))
            counts.append(count)
    return words, counts


def _merge_loop(
    words: list[str],
    counts: list[int],
    token_bytes: list[bytes],
    num_tokens: int,
    min_frequency: int,
    progress: ProgressCallback | None,
) -> list[tuple[int, int]]:
    """Run the merges, extending ``token_bytes``; returns the merged pairs (internal ids)."""
    stride = num_tokens
    heap_stride = stride * stride
    pair_counts, pair_words = _count_pairs(words, counts, stride)
    heap = [-count * heap_stride + pair for pair, count in pair_counts.items()]
    heapify(heap)
    merges: list[tuple[int, int]] = []
    planned = num_tokens - len(token_bytes)
    report_every = max(1, planned // 100)
    while len(token_bytes) < num_tokens and heap:
        negative_count, pair = divmod(heappop(heap), heap_stride)
        count = pair_counts[pair]
        if count != -negative_count:
            if count > 0:
                heappush(heap, -count * heap_stride + pair)
            continue
        if count < min_frequency:
            break
        left, right = divmod(pair, stride)
        new_token = len(token_bytes)
        token_bytes.append(token_bytes[left] + token_bytes[right])
        merges.append((left, right))
        formed = _merge_pair(words, counts, pair_counts, pair_words, left, right, new_token, stride)
        for formed_pair, increment in formed.items():
            total = pair_counts[formed_pair] + increment
            pair_counts[formed_pair] = total
            heappush(heap, -total * heap_stride + formed_pair)
        if progress and len(merges) % report_every == 0:
            progress("merge", len(merges), planned)
    if progress:
        progress("merge", len(merges), len(merges))
    return merges


def _pairs(word: str, stride: int) -> list[int]:
    return [ord(left) * stride + ord(right) for left, right in zip(word, word[1:])]


def _count_pairs(
    words: list[str], counts: list[int], stride: int
) -> tuple[defaultdict[int, int], defaultdict[int, list[int]]]:
    pair_counts: defaultdict[int, int] = defaultdict(int)
    pair_words: defaultdict[int, list[int]] = defaultdict(list)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in _pairs(word, stride):
            pair_counts[pair] += count
            pair_words[pair].append(index)
    return pair_counts, pair_words


def _merge_pair(
    words: list[str],
    counts: list[int],
    pair_counts: defaultdict[int, int],
    pair_words: defaultdict[int, list[int]],
    left: int,
    right: int,
    new_token: int,
    stride: int,
) -> defaultdict[int, int]:
    """Replace the pair in every word holding it and lower the counts of the pairs it broke.

    Returns the increments of the pairs it formed, for the caller to add and push.
    """
    pair = left * stride + right
    target = chr(left) + chr(right)
    replacement = chr(new_token)
    right_row = right * stride
    new_row = new_token * stride
    formed: defaultdict[int, int] = defaultdict(int)
    for index in pair_words.pop(pair, ()):
        word = words[index]
        at = word.find(target)
        if at < 0:
            continue
        count = counts[index]
        if word.find(target, at + 2) < 0:
            # The usual case, one occurrence: only the pairs with its neighbours change.
            if at:
                before_row = ord(word[at - 1]) * stride
                pair_counts[before_row + left] -= count
                formed[before_row + new_token] += count
                pair_words[before_row + new_token].append(index)
            if at + 2 < len(word):
                after = ord(word[at + 2])
                pair_counts[right_row + after] -= count
                formed[new_row + after] += count
                pair_words[new_row + after].append(index)
            words[index] = word[:at] + replacement + word[at + 2 :]
        else:
            # str.replace merges left to right without overlaps, exactly like BPE.
            merged_word = word.replace(target, replacement)
            for old_pair in _pairs(word, stride):
                pair_counts[old_pair] -= count
            for new_pair in _pairs(merged_word, stride):
                formed[new_pair] += count
                pair_words[new_pair].append(index)
            words[index] = merged_word
    del pair_counts[pair]
    return formed
