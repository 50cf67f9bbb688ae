"""Our own tokenizer file: one UTF-8 JSON object.

Common fields: ``"format": "bpe-tokenizer"``, ``"version": 1`` and ``"kind"``, which is
``"byte-bpe"`` or ``"char"``. The rest depends on the kind.

``byte-bpe``::

    "pattern": {"name": "cl100k", "regex": "<the split regex>"}   (name is null if custom)
    "tokens": [[0, "AA=="], [1, "AQ=="], ...]   (id and base64 bytes, sorted by id;
                                                 the id is the merge rank)
    "special_tokens": {"<|endoftext|>": 8191}
    "merges": [[left id, right id], ...]        (in the order they were learned;
                                                 empty for a vocabulary given as ranks)

``char``::

    "chars": ["\\n", " ", "a", ...]             (the id of a character is its position)
"""

from __future__ import annotations

import json
import os
from typing import Any

FORMAT = "bpe-tokenizer"
VERSION = 1
KINDS = ("byte-bpe", "char")


def write_document(path: str | os.PathLike[str], kind: str, body: dict[str, Any]) -> None:
    """Write a tokenizer of ``kind`` whose fields are ``body``."""
    document = {"format": FORMAT, "version": VERSION, "kind": kind, **body}
    with open(path, "w", encoding="utf-8") as file:
        file.write(_dumps(document))


def read_document(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """Read a tokenizer file; returns its kind and the whole JSON object."""
    with open(path, encoding="utf-8") as file:
        try:
            document = json.load(file)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(path)!r} is not a JSON tokenizer file: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a {FORMAT!r} file (no matching 'format')")
    if document.get("version") != VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} has format version {document.get('version')!r}; "
            f"this package reads version {VERSION}"
        )
    kind = document.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{os.fspath(path)!r} has unknown kind {kind!r}; expected one of {KINDS}")
    return kind, document


def _dumps(document: dict[str, Any]) -> str:
    """JSON with one field per line, and one element per line in list fields."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    fields = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            elements = ",\n".join(f"  {dumps(element)}" for element in value)
            fields.append(f" {dumps(key)}: [\n{elements}\n ]")
        else:
            fields.append(f" {dumps(key)}: {dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"
