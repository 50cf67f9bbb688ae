"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never a
half-written mix.

`atomic_write` yields a binary file for writers that stream (NumPy's `save`, a figure's
`savefig`); `write_bytes`, `write_text` and `write_json` write a whole value at once;
`remove` deletes a file; `scratch_file` lends a temporary file for one step's work. A
kill leaves at worst a temporary file (``.<name>.<random>.tmp``) behind, which
`remove_stale_temporaries` deletes on the next start.

Every step that changes the disk first calls `fault_hook(operation, path)` when it is set
(None by default): the tests use it to kill the process at the N-th file operation of a
save and check that what is left on disk is still a complete, consistent state.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile

_TEMP_SUFFIX = ".tmp"

# Called as fault_hook(operation, path) before each disk change; operation is one of
# "create" (a temporary file), "replace" (a temporary file over its target), "sync" (the
# directory, after a replace) and "remove".
fault_hook = None


def _operation(operation: str, path: str) -> None:
    if fault_hook is not None:
        fault_hook(operation, path)


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
    # Named here: the temporary file's errors would name it, not `path`.
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "a folder is where the file should go", path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "no folder to write the file in", path)
    _operation("create", path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=_TEMP_SUFFIX)
    try:
        with file_named(path):
            os.chmod(tmp, _mode_for(path))
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            _operation("replace", path)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _operation("sync", directory)
    _fsync_directory(directory)


@contextlib.contextmanager
def file_named(path, detail: str = ""):
    """Give an OSError of the block that names no file (a full disk fails a buffered write
    so) `path` as its file name, with `detail` after its message."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror + detail, os.fspath(path)) from exc


def write_bytes(path, data: bytes) -> None:
    """Replace `path` with `data` atomically."""
    with atomic_write(path) as f:
        f.write(data)


def write_text(path, text: str) -> None:
    """Replace `path` with `text`, encoded as UTF-8, atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path, value, indent: int | None = 2) -> None:
    """Replace `path` with `value` as JSON (indented, ending in a newline), atomically."""
    write_text(path, json.dumps(value, indent=indent) + "\n")


def remove(path) -> None:
    """Delete `path` if it exists (a file left over from an earlier state)."""
    path = os.fspath(path)
    _operation("remove", path)
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def scratch_file(directory, name: str):
    """Yield the path of a new empty temporary file in `directory`, for data that one step
    needs only while it runs (it never replaces anything), and delete it afterwards. It is
    named like the writers' temporaries, so a kill's leftover goes with them."""
    directory = os.fspath(directory)
    _operation("create", os.path.join(directory, name))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=_TEMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
    finally:
        remove(tmp)


def remove_stale_temporaries(directory) -> list[str]:
    """Delete the temporary files that killed writes left in `directory` (call it only
    where no other process is writing: a folder this process holds locked). Returns
    their names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(directory)):
            if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                remove(os.path.join(directory, name))
                removed.append(name)
    return removed


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
