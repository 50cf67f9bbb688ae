"""tiktoken's rank files (``*.tiktoken``): one ``<base64 token bytes> <rank>`` per line.

Files may be gzip-compressed; reading detects that from the content, writing compresses when
the name ends in ``.gz``. A rank file holds neither the split pattern nor special tokens.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import os

_GZIP_MAGIC = b"\x1f\x8b"


def read_ranks(path: str | os.PathLike[str]) -> dict[bytes, int]:
    """The ranks in a tiktoken file."""
    with open(path, "rb") as file:
        data = file.read()
    if data.startswith(_GZIP_MAGIC):
        data = gzip.decompress(data)
    ranks = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise ValueError(
                f"{os.fspath(path)!r} line {number} is not '<base64 token> <rank>': {line[:60]!r}"
            ) from exc
    return ranks


def write_ranks(path: str | os.PathLike[str], ranks: dict[bytes, int]) -> None:
    """Write ``ranks`` sorted by rank (gzip-compressed when the name ends in .gz)."""
    lines = [
        base64.b64encode(token) + b" " + str(rank).encode()
        for token, rank in sorted(ranks.items(), key=lambda item: item[1])
    ]
    data = b"\n".join(lines) + b"\n"
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as file:
        file.write(data)
