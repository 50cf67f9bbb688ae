"""How many worker processes to use for the parallel parts (chunk counting, batch encoding)."""

from __future__ import annotations

import os


def resolve_workers(num_workers: int | None) -> int:
    """``num_workers`` checked, or the number of cores when it is None."""
    if num_workers is None:
        return os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive int or None, got {num_workers!r}")
    return num_workers
