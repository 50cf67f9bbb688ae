"""A set of 64-bit hashes kept in sorted NumPy arrays: 8 bytes an entry, where a Python
set of strings costs about ten times that, so deduplicating the lines of a gigabyte
corpus fits in memory.

The entries sit in levels (sorted arrays, each at least twice the size of the next), merged
like the digits of a binary counter when one is added: adding n hashes costs O(n log n)
in all, and a lookup is one binary search per level, for a whole array of hashes at once.
"""

from __future__ import annotations

import numpy as np


class SeenHashes:
    def __init__(self) -> None:
        self._levels: list[np.ndarray] = []  # sorted uint64 arrays, largest first

    def __len__(self) -> int:
        return sum(map(len, self._levels))

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A bool array: which of ``hashes`` are in the set."""
        found = np.zeros(len(hashes), dtype=bool)
        for level in self._levels:
            positions = np.minimum(np.searchsorted(level, hashes), len(level) - 1)
            found |= level[positions] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        """Add distinct hashes that are not in the set yet."""
        new = np.sort(np.asarray(hashes, dtype=np.uint64))
        if not len(new):
            return
        while self._levels and len(self._levels[-1]) <= 2 * len(new):
            new = np.concatenate([self._levels.pop(), new])
            new.sort()  # in place: a merge holds two copies of the level, not three
        self._levels.append(new)
