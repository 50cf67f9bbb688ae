"""Worker processes, shared by training, encoding and dataset preparation: how many to
start, and an ordered map over them that keeps only a few items in flight (so a stream
of pieces of a gigabyte file never sits in memory at once)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import chain, islice
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
IN_FLIGHT_PER_WORKER = 2


def resolve_workers(num_workers: int | None) -> int:
    """``num_workers`` checked, or the number of cores when it is None."""
    if num_workers is None:
        return os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive int or None, got {num_workers!r}")
    return num_workers


def ordered_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
) -> Iterator[Result]:
    """``map(function, items)`` in order, on ``workers`` processes (each set up by
    ``initializer(*initargs)``), reading ahead at most ``IN_FLIGHT_PER_WORKER`` items per
    worker. One worker, or a single item, runs in this process, initializer included
    (starting processes would cost more than it saves)."""
    items = iter(items)
    first = list(islice(items, 2))
    items = chain(first, items)
    if workers == 1 or len(first) < 2:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    pool = ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs)
    try:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
