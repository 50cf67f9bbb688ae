"""The safetensors format, read and written with NumPy on the host.

A file is three parts:

    8 bytes   N, the header length (unsigned, little-endian)
    N bytes   a JSON object: {name: {"dtype": "F32", "shape": [2, 3],
              "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
              (padded with spaces; we pad to a multiple of 8 so data stays aligned)
    the rest  the tensors' raw little-endian bytes, C order; offsets are relative to
              the start of this buffer, and the tensors tile it with no gap or overlap

Files we write also carry "minigrad.sha256" in their metadata: a SHA-256 of the header
(without that key) and the data, so a corrupted file is refused instead of loading
garbage weights. Files from other writers (no checksum) are checked for structure only.

This is host-side code: device arrays come to the host through `Device.to_host` and
go back with `Device.asarray`, so a file written from one device loads on any other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from minigrad import backends
from minigrad.io.atomic import atomic_write
from minigrad.tensor import Tensor

# safetensors dtype code <-> dtype name
_CODES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
          "F16": "float16", "BF16": "bfloat16", "U32": "uint32", "I32": "int32",
          "F32": "float32", "U64": "uint64", "I64": "int64", "F64": "float64"}
_CODE_OF = {name: code for code, name in _CODES.items()}
_CHECKSUM_KEY = "minigrad.sha256"
_MAX_HEADER = 100_000_000  # the reference implementation's limit


class SafetensorsError(ValueError):
    """A file that is not (or no longer) valid safetensors: truncated, corrupted, or
    with an inconsistent header."""


def save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write `tensors` (name -> Tensor, device array or NumPy array) to `path`,
    atomically. `metadata`: optional str -> str pairs stored in the header."""
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, got "
                            f"{key!r}: {type(value).__name__}")
    if _CHECKSUM_KEY in metadata:
        raise ValueError(f"save_safetensors: metadata key {_CHECKSUM_KEY!r} is reserved")
    arrays = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"save_safetensors: invalid tensor name {name!r}")
        arrays.append((name, _little_endian(_to_host(value), name)))
    # Widest items first, then by name: with an 8-aligned header every tensor is aligned.
    arrays.sort(key=lambda item: (-item[1].dtype.itemsize, item[0]))
    header, offset = {}, 0
    for name, array in arrays:
        code = _CODE_OF[array.dtype.name]
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header["__metadata__"] = metadata
    digest = _header_digest(header)
    for _, array in arrays:
        digest.update(_bytes_of(array))
    metadata[_CHECKSUM_KEY] = digest.hexdigest()
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with atomic_write(path) as f:
        f.write(len(encoded).to_bytes(8, "little"))
        f.write(encoded)
        for _, array in arrays:
            f.write(_bytes_of(array))


def load_safetensors(path, device=None) -> dict:
    """name -> Tensor on `device` (default 'cpu') for every tensor in the file.

    Raises SafetensorsError for a truncated or corrupted file. BF16 tensors (NumPy has
    no bfloat16) load as float32, exactly.
    """
    device = backends.get_device(device)
    return {name: Tensor(device.asarray(array), device=device)
            for name, array in read_safetensors(path)[0].items()}


def safetensors_metadata(path) -> dict:
    """The file's `__metadata__` (str -> str), reading only the header."""
    with open(path, "rb") as f:
        header = _read_header(f, os.fstat(f.fileno()).st_size, os.fspath(path))
    return header.get("__metadata__", {})


def read_safetensors(path) -> tuple[dict, dict]:
    """(name -> NumPy array, metadata) from a safetensors file, fully validated."""
    where = os.fspath(path)
    with open(path, "rb") as f:
        header = _read_header(f, os.fstat(f.fileno()).st_size, where)
        data = f.read()
    metadata = header.pop("__metadata__", {})
    entries = _check_entries(header, len(data), where)
    expected = metadata.get(_CHECKSUM_KEY)
    if expected is not None:
        digest = _header_digest({**header, "__metadata__": {
            k: v for k, v in metadata.items() if k != _CHECKSUM_KEY}})
        digest.update(data)
        if digest.hexdigest() != expected:
            raise SafetensorsError(f"{where}: checksum mismatch: the file is corrupted "
                                   "(its contents changed after it was written)")
    arrays = {name: _decode(data, code, shape, begin) for name, (code, shape, begin, _)
              in entries.items()}
    return arrays, metadata


# -- writing helpers -------------------------------------------------------------------
def _to_host(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.device.to_host(value.data)
    source = backends.device_of(value)
    if source is None:
        raise TypeError(f"save_safetensors: expected a Tensor or an array, got "
                        f"{type(value).__name__}")
    return source.to_host(value)


def _little_endian(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.name not in _CODE_OF:
        raise TypeError(f"save_safetensors: tensor {name!r} has dtype {array.dtype}, which "
                        f"safetensors cannot store")
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def _bytes_of(array: np.ndarray) -> memoryview:
    return memoryview(array.reshape(-1).view(np.uint8))


def _header_digest(header: dict):
    return hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8"))


# -- reading helpers -------------------------------------------------------------------
def _read_header(f, file_size: int, where: str) -> dict:
    prefix = f.read(8)
    if len(prefix) < 8:
        raise SafetensorsError(f"{where}: truncated: {file_size} bytes, too short for the "
                               "8-byte header length")
    n = int.from_bytes(prefix, "little")
    if n > min(file_size - 8, _MAX_HEADER):
        raise SafetensorsError(f"{where}: header length {n} does not fit a {file_size}-byte "
                               "file (truncated, or not a safetensors file)")
    raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"{where}: corrupted header (not valid UTF-8 JSON: "
                               f"{exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: corrupted header (a JSON {type(header).__name__}, "
                               "not an object)")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{where}: corrupted header (__metadata__ must map str "
                               "to str)")
    return header


def _check_entries(header: dict, data_size: int, where: str) -> dict:
    """name -> (dtype code, shape, begin, end), after checking that every entry is
    well formed and that together they tile the data buffer exactly."""
    entries = {}
    for name, info in header.items():
        try:
            code, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (code in _CODES and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise SafetensorsError(f"{where}: corrupted header entry for {name!r}: {info!r}")
        itemsize = 2 if code == "BF16" else np.dtype(_CODES[code]).itemsize
        if end - begin != math.prod(shape) * itemsize:
            raise SafetensorsError(f"{where}: tensor {name!r} of dtype {code} and shape "
                                   f"{shape} needs {math.prod(shape) * itemsize} bytes, its "
                                   f"offsets span {end - begin}")
        entries[name] = (code, tuple(shape), begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin != position:
            raise SafetensorsError(f"{where}: corrupted header: tensor {name!r} starts at "
                                   f"byte {begin} of the data, expected {position}")
        position = end
    if position > data_size:
        raise SafetensorsError(f"{where}: truncated: the header describes {position} bytes of "
                               f"tensor data, the file holds {data_size}")
    if position < data_size:
        raise SafetensorsError(f"{where}: corrupted: {data_size - position} bytes after the "
                               "last tensor")
    return entries


def _decode(data: bytes, code: str, shape: tuple, begin: int) -> np.ndarray:
    """A fresh, writable, native-endian array of one tensor's bytes."""
    count = math.prod(shape)
    if code == "BF16":
        # bfloat16 is the top half of a float32: shift the bits up and reinterpret.
        bits = np.frombuffer(data, "<u2", count, begin).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    dtype = np.dtype(_CODES[code]).newbyteorder("<")
    array = np.frombuffer(data, dtype, count, begin).reshape(shape)
    return array.astype(array.dtype.newbyteorder("="))
