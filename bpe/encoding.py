"""Text to token ids, tiktoken's rule, on one core or many.

- **One chunk** (:func:`encode_chunk`): starting from single bytes, repeatedly merge the
  adjacent pair whose concatenation has the lowest rank (the leftmost one on ties) until no
  adjacent concatenation is a token. A chunk whose bytes are a token is that one token;
  tiktoken checks this first, and so do we. Short chunks keep a list of pair ranks and find
  the minimum with C-level ``min``/``index`` (quadratic, with a tiny constant). Long chunks
  keep a linked list of parts and a bucket queue (for each rank, the positions of pairs with
  that rank; a heap of the ranks), O(n log n) with no recursion, so a megabyte of one
  repeated character stays fast.
- **A text** (:class:`Encoder`): split by the pattern, encode each distinct chunk once, when
  the :class:`ChunkCache` first misses it, and cache it as a str holding ``chr(id)`` per
  token, so the whole result is one C-level join.
  Allowed special tokens are cut out first and become their ids.
- **Many texts** (:meth:`Encoder.encode_texts`): texts are cut into pieces only where the
  split pattern guarantees the same chunks (see :meth:`SplitPattern.cut`) and never inside
  an allowed special token, so the ids are exactly those of encoding each text whole. The
  pieces are encoded by worker processes that each hold a copy of the encoder and send back
  compact NumPy arrays. Inputs below ``PARALLEL_MIN_CHARS`` stay in this process, where
  starting workers would cost more than it saves.
- **Surrogates**, which a Python str can hold but UTF-8 cannot, are handled as tiktoken
  handles them: a well-formed pair becomes the character it encodes, a lone surrogate becomes
  U+FFFD. So ``decode(encode(text))`` equals :func:`replace_surrogates` of ``text``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from heapq import heapify, heappop, heappush

import numpy as np

from .patterns import SplitPattern
from .special_tokens import SpecialTokens
from .workers import ordered_map, resolve_workers

LONG_CHUNK_BYTES = 128
# The chunk cache is dropped when it holds this many chunks; longer chunks are not kept.
CACHE_MAX_ENTRIES = 1 << 18
CACHE_MAX_CHUNK_CHARS = 256
# One text is split and encoded in pieces of about this many characters (bounds memory).
ENCODE_PIECE_CHARS = 1 << 20
# Many texts go to worker processes above this many characters, in pieces of this size.
PARALLEL_MIN_CHARS = 1 << 20
PARALLEL_PIECE_CHARS = 1 << 18

_NO_RANK = 1 << 62


class Encoder:
    """Text to ids for one vocabulary: ranks (token bytes to id), pattern, special tokens."""

    def __init__(
        self, ranks: Mapping[bytes, int], pattern: SplitPattern, specials: SpecialTokens
    ) -> None:
        self.ranks = ranks
        self.pattern = pattern
        self.specials = specials
        self.vocab_size = 1 + max([*ranks.values(), *specials.ids.values()])
        self._cache = ChunkCache(ranks)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text`` with special tokens treated as plain text."""
        return self._ordinary_codes(text).tolist()

    def encode_allowing(self, text: str, allowed: frozenset[str]) -> list[int]:
        """Encode with ``allowed`` special tokens as ids and everything else as text."""
        return self.encode_array(text, allowed).tolist()

    def encode_array(self, text: str, allowed: frozenset[str]) -> np.ndarray:
        """:meth:`encode_allowing` as an array of :func:`id_dtype`, made without a list of
        Python ints in between (what workers send back)."""
        dtype = id_dtype(self.vocab_size)
        parts = []
        position = 0
        for match in self.specials.find(text, allowed):
            parts.append(self._ordinary_codes(text[position : match.start()]).astype(dtype))
            parts.append(np.array([self.specials.ids[match.group()]], dtype))
            position = match.end()
        parts.append(self._ordinary_codes(text[position:]).astype(dtype))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def encode_texts(
        self,
        texts: Sequence[str],
        allowed: frozenset[str],
        *,
        num_workers: int | None,
        as_numpy: bool,
    ) -> list[list[int]] | list[np.ndarray]:
        """Encode each text with the ``allowed`` special tokens, in workers when large."""
        workers = resolve_workers(num_workers)
        if workers == 1 or sum(map(len, texts)) < PARALLEL_MIN_CHARS:
            if as_numpy:
                return [self.encode_array(text, allowed) for text in texts]
            return [self.encode_allowing(text, allowed) for text in texts]
        pieces, owners = [], []
        for index, text in enumerate(texts):
            avoid = self.specials.within(text, allowed) if allowed else None
            for piece in self.pattern.cut(text, PARALLEL_PIECE_CHARS, avoid):
                pieces.append(piece)
                owners.append(index)
        arrays = self.encode_pieces(pieces, allowed, workers)
        if not as_numpy:  # each piece becomes ints as it arrives, while workers go on
            lists: list[list[int]] = [[] for _ in texts]
            for owner, ids in zip(owners, arrays):
                lists[owner] += ids.tolist()
            return lists
        per_text: list[list[np.ndarray]] = [[] for _ in texts]
        for owner, ids in zip(owners, arrays):
            per_text[owner].append(ids)
        empty = to_id_array([], self.vocab_size)
        return [np.concatenate(parts) if parts else empty for parts in per_text]

    def encode_pieces(
        self, pieces: Iterable[str], allowed: frozenset[str], workers: int
    ) -> Iterator[np.ndarray]:
        """The ids of each piece as an array, in order, on ``workers`` processes that read
        ahead only a few pieces (a stream of pieces never sits in memory at once)."""
        return ordered_map(partial(_encode_piece, allowed=allowed), pieces, workers,
                           initializer=_start_worker, initargs=(self,))

    def _ordinary_codes(self, text: str) -> np.ndarray:
        """The ids of ``text`` (specials as plain text), a read-only uint32 array."""
        try:
            encoded = self._encode_text(text)
        except UnicodeEncodeError:
            encoded = self._encode_text(replace_surrogates(text))
        return np.frombuffer(encoded.encode("utf-32-le", "surrogatepass"), np.uint32)

    def _encode_text(self, text: str) -> str:
        """The ids of ``text`` as one str holding ``chr(id)`` per token (ids < 0x110000)."""
        pieces = self.pattern.cut(text, ENCODE_PIECE_CHARS)
        return "".join(self._encode_chunks(self.pattern.split(piece)) for piece in pieces)

    def _encode_chunks(self, chunks: list[str]) -> str:
        """The ids of the chunks; each distinct chunk is encoded once and cached."""
        cache = self._cache
        if len(cache) > CACHE_MAX_ENTRIES:
            self._cache = cache = ChunkCache(self.ranks)
        encoded = "".join(map(cache.__getitem__, chunks))
        cache.forget_long_chunks()
        return encoded

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_cache"] = ChunkCache(self.ranks)
        return state


class ChunkCache(dict):
    """Chunk -> its ids as a str holding ``chr(id)`` per token. A chunk not yet in it is
    encoded when it is looked up, so a text is encoded in one C-level pass over its chunks
    (no separate search for the new ones). Chunks longer than ``CACHE_MAX_CHUNK_CHARS`` are
    kept only until :meth:`forget_long_chunks`, the end of the text being encoded."""

    __slots__ = ("ranks", "long_chunks")

    def __init__(self, ranks: Mapping[bytes, int]) -> None:
        super().__init__()
        self.ranks = ranks
        self.long_chunks: list[str] = []

    def __missing__(self, chunk: str) -> str:
        data = chunk.encode("utf-8")
        token = self.ranks.get(data)  # as in encode_chunk: most chunks are one token
        if token is not None:
            encoded = self[chunk] = chr(token)
        else:
            encoded = self[chunk] = "".join(map(chr, merge_parts(data, self.ranks)))
        if len(chunk) > CACHE_MAX_CHUNK_CHARS:
            self.long_chunks.append(chunk)
        return encoded

    def forget_long_chunks(self) -> None:
        for chunk in self.long_chunks:
            self.pop(chunk, None)
        self.long_chunks.clear()


# -- worker processes ---------------------------------------------------------------------

_worker_encoder: Encoder | None = None


def _start_worker(encoder: Encoder) -> None:
    global _worker_encoder
    _worker_encoder = encoder


def _encode_piece(piece: str, allowed: frozenset[str]) -> np.ndarray:
    assert _worker_encoder is not None
    return _worker_encoder.encode_array(piece, allowed)


# -- ids as arrays, surrogates ------------------------------------------------------------


def id_dtype(vocab_size: int) -> np.dtype:
    """uint8, uint16, uint32 or uint64: the smallest that holds ids below ``vocab_size``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def to_id_array(ids: Sequence[int], vocab_size: int) -> np.ndarray:
    """``ids`` as a 1-D array of :func:`id_dtype` for ``vocab_size``."""
    return np.array(ids, dtype=id_dtype(vocab_size))


def replace_surrogates(text: str) -> str:
    """Join surrogate pairs and replace lone surrogates with U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encodable(text: str) -> str:
    """``text`` itself when it encodes to UTF-8, else :func:`replace_surrogates` of it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return replace_surrogates(text)
    return text


# -- one chunk ----------------------------------------------------------------------------

def encode_chunk(data: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """The token ids of one chunk; every single byte must be a token."""
    token = ranks.get(data)
    if token is not None:
        return [token]
    return merge_parts(data, ranks)


def merge_parts(data: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """The token ids of a chunk by merging its bytes (:func:`encode_chunk` without checking
    first whether the whole chunk is a token)."""
    if len(data) <= LONG_CHUNK_BYTES:
        return _merge_short(data, ranks)
    return _merge_long(data, ranks)


def _merge_short(data: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    get = ranks.get
    bounds = list(range(len(data) + 1))  # part i is data[bounds[i]:bounds[i + 1]]
    pair_ranks = [get(data[i : i + 2], _NO_RANK) for i in range(len(data) - 1)]
    while pair_ranks:
        best = min(pair_ranks)
        if best == _NO_RANK:
            break
        i = pair_ranks.index(best)
        del bounds[i + 1]
        del pair_ranks[i]
        if i:
            pair_ranks[i - 1] = get(data[bounds[i - 1] : bounds[i + 1]], _NO_RANK)
        if i < len(pair_ranks):
            pair_ranks[i] = get(data[bounds[i] : bounds[i + 2]], _NO_RANK)
    return [ranks[data[start:end]] for start, end in zip(bounds, bounds[1:])]


def _merge_long(data: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    get = ranks.get
    size = len(data)
    # Parts are named by their start offset; next_start[s] is where the part at s ends.
    next_start = array("q", range(1, size + 1))
    prev_start = array("q", range(-1, size - 1))
    # pair_rank[s]: the rank of the part at s joined with the next part, or _NO_RANK. The
    # bytes at s only grow, so a queued (rank, s) is stale exactly when pair_rank[s] != rank.
    pair_rank = array("q", [get(data[i : i + 2], _NO_RANK) for i in range(size - 1)])
    pair_rank.append(_NO_RANK)
    # A bucket queue: the starts waiting at each rank, and a heap of the ranks with a bucket.
    buckets: dict[int, list[int]] = {}
    for start, rank in enumerate(pair_rank):
        if rank != _NO_RANK:
            buckets.setdefault(rank, []).append(start)
    ranks_waiting = list(buckets)
    heapify(ranks_waiting)

    def enqueue(rank: int, start: int) -> None:
        bucket = buckets.get(rank)
        if bucket is None:
            buckets[rank] = [start]
            heappush(ranks_waiting, rank)
        else:
            bucket.append(start)

    while ranks_waiting:
        rank = heappop(ranks_waiting)
        starts = sorted(buckets.pop(rank))
        # Merging a pair never forms another pair of the same rank, so this bucket is done in
        # left-to-right order, unless a merge forms a pair of lower rank, which goes first.
        for index, start in enumerate(starts):
            if pair_rank[start] != rank:
                continue
            middle = next_start[start]
            end = next_start[middle]
            pair_rank[middle] = _NO_RANK
            next_start[start] = end
            lowest = _NO_RANK
            if end < size:
                prev_start[end] = start
                lowest = pair_rank[start] = get(data[start : next_start[end]], _NO_RANK)
                if lowest != _NO_RANK:
                    enqueue(lowest, start)
            else:
                pair_rank[start] = _NO_RANK
            before = prev_start[start]
            if before >= 0:
                formed = pair_rank[before] = get(data[before:end], _NO_RANK)
                if formed != _NO_RANK:
                    enqueue(formed, before)
                    lowest = min(lowest, formed)
            if lowest < rank:
                if index + 1 < len(starts):
                    buckets[rank] = starts[index + 1 :]
                    heappush(ranks_waiting, rank)
                break
    tokens = []
    start = 0
    while start < size:
        end = next_start[start]
        tokens.append(ranks[data[start:end]])
        start = end
    return tokens
