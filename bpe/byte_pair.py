"""Encoding one chunk by rank, tiktoken's rule.

Starting from single bytes, repeatedly merge the adjacent pair whose concatenation has the
lowest rank (the leftmost one on ties) until no adjacent concatenation is a token. A chunk
whose bytes are a token is that one token; tiktoken checks this first, and so do we.

Short chunks keep a list of pair ranks and find the minimum with C-level ``min``/``index``
(quadratic, with a tiny constant). Long chunks keep a linked list of parts and a bucket queue
(for each rank, the positions of pairs with that rank; a heap of the ranks), O(n log n) with
no recursion, so a megabyte of one repeated character stays fast.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from heapq import heapify, heappop, heappush

LONG_CHUNK_BYTES = 128

_NO_RANK = 1 << 62


def encode_chunk(data: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """The token ids of one chunk; every single byte must be a token."""
    token = ranks.get(data)
    if token is not None:
        return [token]
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
