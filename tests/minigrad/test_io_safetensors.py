"""safetensors: bit-exact round trips, interop with the `safetensors` package both ways,
clear errors for truncated and corrupted files, atomic writes."""

import json
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad.io import (
    SafetensorsError,
    load_safetensors,
    read_safetensors,
    safetensors_metadata,
    save_safetensors,
)

RNG = np.random.default_rng(0)
ARRAYS = {
    "f64": RNG.standard_normal((3, 2)),
    "f32": RNG.standard_normal((4,)).astype(np.float32),
    "f16": RNG.standard_normal((2, 2, 2)).astype(np.float16),
    "i64": RNG.integers(-5, 5, (5,)),
    "i32": RNG.integers(-5, 5, (2, 3)).astype(np.int32),
    "i16": np.array([-3, 7], dtype=np.int16),
    "i8": np.array([-128, 127], dtype=np.int8),
    "u8": np.arange(7, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "nonfinite": np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32),
}


def _assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for name, array in expected.items():
        value = got[name]
        value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        assert value.dtype == array.dtype and value.shape == array.shape, name
        assert value.tobytes() == array.tobytes(), name  # bit-exact, NaN and -0.0 included


def test_round_trip_every_dtype_bit_exact(tmp_path, device):
    path = tmp_path / "t.safetensors"
    # The array API (so the 'strict' device) has no float16.
    arrays = {k: v for k, v in ARRAYS.items() if device == "cpu" or v.dtype != np.float16}
    tensors = {name: mg.tensor(a, device=device) for name, a in arrays.items()}
    save_safetensors(tensors, path, metadata={"note": "hello"})
    loaded = load_safetensors(path, device=device)
    assert all(t.device == device for t in loaded.values())
    _assert_same(loaded, arrays)
    assert safetensors_metadata(path)["note"] == "hello"


def test_saved_on_one_device_loads_on_another(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors({"w": mg.tensor(ARRAYS["f32"], device="strict")}, path)
    loaded = load_safetensors(path, device="cpu")
    assert loaded["w"].device == "cpu"
    _assert_same(loaded, {"w": ARRAYS["f32"]})


def test_layout_is_aligned_and_accepts_raw_arrays(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(dict(ARRAYS), path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    for name, info in header.items():
        if name != "__metadata__":
            assert info["data_offsets"][0] % np.dtype(ARRAYS[name].dtype).itemsize == 0


def test_files_we_write_load_with_the_safetensors_package(tmp_path, safetensors, torch):
    path = tmp_path / "ours.safetensors"
    save_safetensors({k: v for k, v in ARRAYS.items()}, path, metadata={"a": "b"})
    _assert_same(safetensors.numpy.load_file(path), ARRAYS)
    loaded = pytest.importorskip("safetensors.torch").load_file(path)
    np.testing.assert_array_equal(loaded["f64"].numpy(), ARRAYS["f64"])
    with safetensors.safe_open(path, "np") as f:
        assert f.metadata()["a"] == "b"


def test_files_the_safetensors_package_writes_load_here(tmp_path, safetensors):
    path = tmp_path / "theirs.safetensors"
    safetensors.numpy.save_file(dict(ARRAYS), path, metadata={"format": "np"})
    _assert_same(load_safetensors(path), ARRAYS)
    assert safetensors_metadata(path) == {"format": "np"}


def test_bfloat16_from_torch_loads_as_float32_exactly(tmp_path, torch):
    path = tmp_path / "bf16.safetensors"
    values = torch.tensor([1.0, -2.5, 3.140625, 1e30, float("inf")], dtype=torch.bfloat16)
    pytest.importorskip("safetensors.torch").save_file({"w": values}, path)
    loaded = load_safetensors(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded.numpy(), values.float().numpy())


# -- damaged files ----------------------------------------------------------------------
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    save_safetensors({"w": ARRAYS["f64"], "b": ARRAYS["i32"]}, path)
    return path


def test_every_truncation_is_refused(good_file, tmp_path):
    raw = good_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    for size in sorted({0, 3, 8, 9, len(raw) // 2, len(raw) - 1}):
        cut.write_bytes(raw[:size])
        with pytest.raises(SafetensorsError, match="truncated|does not fit"):
            load_safetensors(cut)


def test_flipped_data_byte_fails_the_checksum(good_file):
    raw = bytearray(good_file.read_bytes())
    raw[-5] ^= 0x10
    good_file.write_bytes(bytes(raw))
    with pytest.raises(SafetensorsError, match="checksum mismatch: the file is corrupted"):
        load_safetensors(good_file)


def test_edited_header_fails_the_checksum(good_file):
    raw = good_file.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].replace(b'"shape":[3,2]', b'"shape":[2,3]')
    assert header != raw[8:8 + n]
    good_file.write_bytes(raw[:8] + header + raw[8 + n:])
    with pytest.raises(SafetensorsError, match="checksum mismatch"):
        load_safetensors(good_file)


def _write_raw(path, header: dict, data: bytes) -> None:
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)


@pytest.mark.parametrize("header,data,message", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12,
     "4 bytes after the last tensor"),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8,
     "needs 12 bytes, its offsets span 8"),
    ({"w": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8,
     "corrupted header entry for 'w'"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8,
     "starts at byte 4 of the data, expected 0"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4,
     "truncated: the header describes 8 bytes of tensor data, the file holds 4"),
    ({"__metadata__": {"a": 1}}, b"", "__metadata__ must map str to str"),
])
def test_inconsistent_headers_are_refused(tmp_path, header, data, message):
    path = tmp_path / "bad.safetensors"
    _write_raw(path, header, data)
    with pytest.raises(SafetensorsError, match=message):
        read_safetensors(path)


def test_garbage_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((6).to_bytes(8, "little") + b"\xff{oops")
    with pytest.raises(SafetensorsError, match="corrupted header \\(not valid UTF-8 JSON"):
        load_safetensors(path)
    path.write_bytes((2).to_bytes(8, "little") + b"[]")
    with pytest.raises(SafetensorsError, match="a JSON list, not an object"):
        load_safetensors(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(SafetensorsError, match="does not fit a 64-byte file"):
        load_safetensors(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_safetensors({}, tmp_path / "x", metadata={"a": 1})
    with pytest.raises(ValueError, match="reserved"):
        save_safetensors({}, tmp_path / "x", metadata={"minigrad.sha256": "0"})
    with pytest.raises(TypeError, match="tensor 'c' has dtype complex128"):
        save_safetensors({"c": np.zeros(2, dtype=complex)}, tmp_path / "x")
    with pytest.raises(TypeError, match="expected a Tensor or an array, got list"):
        save_safetensors({"l": [1, 2]}, tmp_path / "x")


# -- atomic writes ----------------------------------------------------------------------
def test_crash_mid_write_leaves_the_old_file_and_no_temporary(good_file, monkeypatch):
    from minigrad.io import safetensors as module

    before = good_file.read_bytes()
    real, calls = module._bytes_of, []

    def fail_while_writing(array):  # the 1st call feeds the checksum, the 2nd the file
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(array)

    monkeypatch.setattr(module, "_bytes_of", fail_while_writing)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors({"w": np.ones(3)}, good_file)
    assert len(calls) == 2
    assert good_file.read_bytes() == before
    assert os.listdir(good_file.parent) == [good_file.name]


def test_overwrite_keeps_permissions(good_file):
    os.chmod(good_file, 0o640)
    save_safetensors({"x": np.ones(1)}, good_file)
    assert os.stat(good_file).st_mode & 0o777 == 0o640
    _assert_same(load_safetensors(good_file), {"x": np.ones(1)})
