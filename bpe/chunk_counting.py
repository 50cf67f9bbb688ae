"""Counting the pre-tokenized chunks of a training corpus.

Training only needs each distinct chunk and how often it occurs, so the corpus is read once,
in pieces of about a million characters, each split by the pattern and counted with a
Counter. Pieces are counted in worker processes when there are several of them. Each text
(string or file) is split on its own; long ones are cut only where the pattern's split
cannot change (see :meth:`SplitPattern.cut`), so the counts equal those of the uncut text.
Occurrences of the special tokens are taken out of the text first: they never take part in
a merge (Hugging Face's trainer, unlike this one, would learn merges from them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import chain, islice

from .patterns import SplitPattern
from .progress import ProgressCallback
from .special_tokens import SpecialTokens
from .surrogates import encodable
from .workers import resolve_workers

PIECE_CHARS = 1 << 20


def count_chunks(
    texts: Iterable[str],
    pattern: SplitPattern,
    *,
    special_tokens: SpecialTokens | None = None,
    num_workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> Counter[str]:
    """How often each chunk occurs in ``texts`` (each text split on its own)."""
    workers = resolve_workers(num_workers)
    batches = _batches(texts, pattern, special_tokens or SpecialTokens({}))
    first = list(islice(batches, 2))
    batches = chain(first, batches)
    if workers > 1 and len(first) > 1:
        return _count_in_workers(batches, pattern, workers, progress)
    counts: Counter[str] = Counter()
    done = 0
    for batch in batches:
        counts.update(_count_batch(pattern, batch))
        done += sum(map(len, batch))
        if progress:
            progress("count", done, 0)
    return counts


def read_files(
    paths: Iterable[str | os.PathLike[str]],
    pattern: SplitPattern,
    special_tokens: SpecialTokens | None = None,
) -> Iterator[str]:
    """The UTF-8 texts of ``paths``, each file in pieces cut where the split cannot change.

    Line endings are kept as they are in the file; no cut falls inside a special token.
    Patterns without safe cuts (custom ones) get each file whole.
    """
    specials = special_tokens or SpecialTokens({})
    for path in paths:
        try:
            yield from _read_file(path, pattern, specials)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{os.fspath(path)!r} is not UTF-8 text: {exc}") from exc


def _read_file(
    path: str | os.PathLike[str], pattern: SplitPattern, specials: SpecialTokens
) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as file:
        if not pattern.can_cut:
            yield file.read()
            return
        # Enough characters before a block to judge a cut at its start, or a special token
        # that spans into it.
        context = 2 + max(map(len, specials.ids), default=0)
        pending: list[str] = []  # blocks read since the last cut, joined only at a cut
        while block := file.read(PIECE_CHARS):
            tail = _tail(pending, context)
            text = tail + block
            avoid = specials.within(text, frozenset(specials.ids))
            cut = pattern.last_cut(text, since=max(len(tail) - 1, 0), avoid=avoid)
            if cut:
                pending.append(block[: cut - len(tail)])
                yield "".join(pending)
                pending = [block[cut - len(tail) :]]
            else:
                pending.append(block)
        if pending:
            yield "".join(pending)


def _tail(pieces: list[str], size: int) -> str:
    """The last ``size`` characters of the concatenated ``pieces``."""
    parts: list[str] = []
    for piece in reversed(pieces):
        parts.append(piece[-size:])
        size -= len(piece)
        if size <= 0:
            break
    return "".join(reversed(parts))


def _batches(
    texts: Iterable[str], pattern: SplitPattern, specials: SpecialTokens
) -> Iterator[list[str]]:
    """Split out special tokens, cut long texts, and group into lists of ~PIECE_CHARS."""
    batch: list[str] = []
    size = 0
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"training texts must be str, got {type(text).__name__}")
        for piece in chain.from_iterable(
            pattern.cut(part, PIECE_CHARS) for part in specials.split(text)
        ):
            batch.append(piece)
            size += len(piece)
            if size >= PIECE_CHARS:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def _count_batch(pattern: SplitPattern, batch: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in batch:
        counts.update(pattern.split(encodable(text)))
    return counts


def _count_in_workers(
    batches: Iterator[list[str]],
    pattern: SplitPattern,
    workers: int,
    progress: ProgressCallback | None,
) -> Counter[str]:
    counts: Counter[str] = Counter()
    done = 0
    pending: dict[Future[Counter[str]], int] = {}

    def collect(futures: Iterable[Future[Counter[str]]]) -> None:
        nonlocal done
        for future in futures:
            counts.update(future.result())
            done += pending.pop(future)
            if progress:
                progress("count", done, 0)

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for batch in batches:
            pending[pool.submit(_count_batch, pattern, batch)] = sum(map(len, batch))
            if len(pending) >= 2 * workers:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
        collect(list(pending))
    return counts
