"""minigrad.io.atomic: the one writer of every file the project saves. A write replaces
the file whole or leaves it as it was, with no temporary file left behind."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from minigrad.io import atomic


def test_write_text_bytes_and_json_replace_the_file(tmp_path):
    path = tmp_path / "f"
    atomic.write_text(path, "caf\u00e9\n")
    assert path.read_bytes() == "caf\u00e9\n".encode()
    atomic.write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic.write_json(path, {"a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}\n'
    atomic.write_json(path, {"a": 1}, indent=None)
    assert json.loads(path.read_text()) == {"a": 1} and path.read_text().endswith("}\n")
    assert os.listdir(tmp_path) == ["f"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.npy"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError, match="mid-write"), atomic.atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError("mid-write")
    assert path.read_text() == "old"
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic.write_json(path, {"x": object()})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.npy"]


def test_streaming_writers_and_permissions(tmp_path):
    path = tmp_path / "ids.npy"
    with atomic.atomic_write(path) as f:
        np.save(f, np.arange(5, dtype=np.uint16))
    assert np.load(path).tolist() == [0, 1, 2, 3, 4]
    os.chmod(path, 0o640)
    atomic.write_text(path, "new")
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_a_folder_in_the_way_or_a_missing_folder_is_named_not_the_temporary(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError, match=r"a folder is where the file should go: '.*n'$"):
        atomic.write_text(tmp_path / "taken", "x")
    with pytest.raises(FileNotFoundError, match=r"no folder to write the file in: '.*nope/f'$"):
        atomic.write_text(tmp_path / "nope" / "f", "x")
    assert os.listdir(tmp_path) == ["taken"] and not os.listdir(tmp_path / "taken")


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    """A full disk fails a buffered write at flush or fsync with no file name: the error
    gets the target's name, and the old file stays."""
    import errno

    path = tmp_path / "f.json"
    atomic.write_text(path, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match=r"No space left on device: '.*f\.json'$") as caught:
        atomic.write_text(path, "new")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.json"]
