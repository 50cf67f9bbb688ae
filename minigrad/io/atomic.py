"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never a
half-written mix."""

from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path):
    """Yield a binary file to write; on success it replaces `path` in one step.

    The data goes to a temporary file in the same directory (os.replace is atomic only
    within a filesystem), is flushed and fsync'ed, then renamed over `path`; the
    directory is fsync'ed so the rename survives a power loss. If writing fails, the
    temporary file is removed and `path` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _mode_for(path: str) -> int:
    """The replaced file's permissions, or the umask's default for a new file (mkstemp
    makes its file private, 0o600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    # Not every platform can open a directory (Windows cannot); the rename still happened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
