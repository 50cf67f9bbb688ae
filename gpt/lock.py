"""A folder lock: one live process at a time trains in a run folder or prepares a dataset
folder.

The lock is an advisory `fcntl.flock` on the folder's ``.lock`` file, holding the pid of
its owner. The kernel drops it when the process ends, however it ends (a kill, a crash),
so a lock left by a dead process is stale by construction and is simply taken over: no
pid guessing. POSIX only (fcntl); the project's tests and scripts run on Linux and macOS.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


def make_folder(path, what: str) -> None:
    """`path` and its parents made if missing; a file in the way is named, not an errno."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"{what} {path}: a file is in the way (it, or a folder "
                                 "above it, is a file, not a folder)") from None


class FolderLocked(OSError):
    """Another live process holds the folder."""


class FolderLock:
    """Hold `folder` (created if needed) until `release()` or the end of the process;
    raises FolderLocked naming the holder's pid if another process holds it."""

    def __init__(self, folder, what: str = "folder"):
        self.folder = Path(folder)
        make_folder(self.folder, what)
        path = self.folder / LOCK_FILE
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(self._fd)
            raise FolderLocked(f"{what} {self.folder} is in use by another process (pid "
                               f"{holder}); wait for it to finish or stop it") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode("ascii"))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
