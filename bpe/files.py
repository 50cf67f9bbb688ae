"""Tokenizer files: ours, tiktoken's, GPT-2's and Hugging Face's.

Every file is written through :func:`write_atomically` (the project's one atomic writer,
``minigrad.io.atomic``): a reader or a crash sees the old file or the new one, never half.

**Our format** (``bpe-tokenizer``, version 1): one UTF-8 JSON object with the common fields
``"format": "bpe-tokenizer"``, ``"version": 1`` and ``"kind"``, which is ``"byte-bpe"`` or
``"char"``. The rest depends on the kind.

``byte-bpe``::

    "pattern": {"name": "cl100k", "regex": "<the split regex>"}   (name is null if custom)
    "tokens": [[0, "AA=="], [1, "AQ=="], ...]   (id and base64 bytes, sorted by id;
                                                 the id is the merge rank)
    "special_tokens": {"<|endoftext|>": 8191}
    "merges": [[left id, right id], ...]        (in the order they were learned;
                                                 empty for a vocabulary given as ranks)

``char``::

    "chars": ["\\n", " ", "a", ...]             (the id of a character is its position)

**tiktoken's rank files** (``*.tiktoken``): one ``<base64 token bytes> <rank>`` per line.
Files may be gzip-compressed; reading detects that from the content, writing compresses when
the name ends in ``.gz``. A rank file holds neither the split pattern nor special tokens.

**GPT-2's byte alphabet**: GPT-2's ``encoder.json``/``vocab.bpe`` and Hugging Face's
byte-level files store tokens as strings in which every byte is one printable character:
bytes that are printable ASCII or Latin-1 (except the soft hyphen) stand for themselves, the
other 68 bytes are shifted, in byte order, to U+0100 and up. The order of these characters
is also the order in which Hugging Face's trainer numbers the 256 byte tokens, which decides
its ties (see :mod:`bpe.training`).

**GPT-2's files**: ``encoder.json`` maps tokens, written in the GPT-2 byte alphabet, to ids;
``vocab.bpe`` lists the merges in rank order, one ``left right`` pair per line after a
``#version`` line. A token that is neither a single byte nor the result of a merge
(``<|endoftext|>``) is special.

**Hugging Face's** ``tokenizer.json``, written so that it encodes like this package:

- Pre-tokenizer: ``Split`` on the pattern (matches isolated), then ``ByteLevel`` without its
  own regex, which writes each chunk's bytes in the GPT-2 alphabet.
- Model: ``BPE`` with ``ignore_merges`` (a chunk that is a token becomes that token, as in
  tiktoken) and a merge list derived from the ranks: every way to split each token into two
  tokens, ordered by the token's rank, then by the ranks of the parts. Hugging Face's rule
  (merge the pair listed first) then matches tiktoken's (merge the pair whose concatenation
  has the lowest rank), so the export works for a vocabulary given only as ranks.
  One corner can still differ: when two *different* pairs that spell the same token overlap
  in a chunk (``ab|a|ba``), tiktoken merges the leftmost and Hugging Face the one listed first.
- Special tokens become added tokens, matched in text before the pre-tokenizer.

The split regex is run by Oniguruma in Hugging Face; the named patterns mean the same there.

Reading a ``tokenizer.json`` (:func:`read_tokenizer_json`) accepts byte-level BPE models as
the ``tokenizers`` library writes them: no normalizer, a ``ByteLevel`` pre-tokenizer (GPT-2's
regex, no prefix space) or the ``Split`` + ``ByteLevel`` pair above, no post-processor other
than ``ByteLevel`` (nor decoder), added tokens without ``lstrip``/``rstrip``/``single_word``
(nor one that spells a vocabulary token in the byte alphabet). A custom ``Split`` regex goes
through :meth:`~bpe.patterns.SplitPattern.from_oniguruma`. Added tokens
become special tokens (matched in text when allowed, as ``tokenizers`` always matches them);
the normalized ones (``add_tokens``'s) are late special tokens, matched after the others in
the text they leave, as ``tokenizers`` does; an added token whose text is already a token
(a single byte, a merge's result) keeps that token's id and stays one of the ranks.
Hugging Face merges the listed pair that comes first; the ranks rule here gives the same ids
when no merge makes a token with a lower id than the merge before it (BpeTrainer's models and
our export satisfy this; the overlap corner above aside); a file that breaks it is refused,
naming the merge.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .patterns import GPT2_PATTERN

FORMAT = "bpe-tokenizer"
VERSION = 1
KINDS = ("byte-bpe", "char")

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Vocabulary:
    """Ranks (bytes to id), special tokens (str to id) and merges (pairs of ids, in order).

    What training learns and what GPT-2's files hold: everything a :class:`~bpe.Tokenizer`
    needs but the split pattern.
    """

    ranks: dict[bytes, int]
    special_tokens: dict[str, int]
    merges: list[tuple[int, int]]
    # Special tokens matched after the others (Hugging Face's normalized added tokens).
    late_special_tokens: frozenset[str] = frozenset()


def missing_single_bytes(ranks: Mapping[bytes, int]) -> list[int]:
    """The bytes that are no token of ``ranks`` (a byte-level BPE needs all 256)."""
    return [byte for byte in range(256) if bytes([byte]) not in ranks]


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, through ``minigrad.io.atomic``."""
    # Imported on first write: importing minigrad loads the whole engine, which `import bpe`
    # (and every worker process) need not pay for.
    from minigrad.io.atomic import write_bytes

    write_bytes(path, data)


# -- our format ---------------------------------------------------------------------------


def write_document(path: str | os.PathLike[str], kind: str, body: dict[str, Any]) -> None:
    """Write a tokenizer of ``kind`` whose fields are ``body``."""
    document = {"format": FORMAT, "version": VERSION, "kind": kind, **body}
    write_atomically(path, _dumps(document).encode("utf-8"))


def read_document(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """Read a tokenizer file; returns its kind and the whole JSON object."""
    with open(path, "rb") as file:
        data = file.read()
    if data.startswith(_GZIP_MAGIC):
        raise ValueError(f"{os.fspath(path)!r} is gzip-compressed, not a JSON tokenizer file "
                         "(a tiktoken rank file? read it with Tokenizer.from_tiktoken)")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a JSON tokenizer file: {exc}") from None
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


# -- tiktoken rank files ------------------------------------------------------------------


def read_ranks(path: str | os.PathLike[str]) -> dict[bytes, int]:
    """The ranks in a tiktoken file."""
    with open(path, "rb") as file:
        data = file.read()
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{os.fspath(path)!r} is truncated or corrupt gzip data "
                             f"({exc or type(exc).__name__})") from None
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
    write_atomically(path, data)


# -- GPT-2's byte alphabet ----------------------------------------------------------------

_SELF_MAPPED = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]


def _byte_to_char() -> list[str]:
    chars = [""] * 256
    for byte in _SELF_MAPPED:
        chars[byte] = chr(byte)
    shifted = (byte for byte in range(256) if not chars[byte])
    for offset, byte in enumerate(shifted):
        chars[byte] = chr(256 + offset)
    return chars


BYTE_TO_CHAR: list[str] = _byte_to_char()
CHAR_TO_BYTE: dict[str, int] = {char: byte for byte, char in enumerate(BYTE_TO_CHAR)}

# The 256 byte values sorted by their character: Hugging Face's id order for byte tokens.
BYTES_IN_CHAR_ORDER: list[int] = sorted(range(256), key=lambda byte: BYTE_TO_CHAR[byte])


def bytes_to_chars(data: bytes) -> str:
    """``data`` written in the GPT-2 alphabet, one character per byte."""
    return "".join(BYTE_TO_CHAR[byte] for byte in data)


def chars_to_bytes(text: str) -> bytes:
    """Inverse of :func:`bytes_to_chars`; raises ValueError on a character outside it."""
    try:
        return bytes(CHAR_TO_BYTE[char] for char in text)
    except KeyError as exc:
        raise ValueError(f"{text!r} is not in the GPT-2 byte alphabet ({exc.args[0]!r})") from exc


# -- GPT-2's encoder.json and vocab.bpe ---------------------------------------------------


def read_gpt2_files(
    encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str]
) -> Vocabulary:
    """Read the two files into ranks, special tokens and merges."""
    with open(encoder_json, encoding="utf-8") as file:
        encoder: dict[str, int] = json.load(file)
    with open(vocab_bpe, encoding="utf-8") as file:
        merge_lines = file.read().splitlines()
    merges, merged = [], set()
    for number, line in enumerate(merge_lines, start=1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or any(part not in encoder for part in parts):
            raise ValueError(
                f"{os.fspath(vocab_bpe)!r} line {number} is not a merge of two tokens of "
                f"{os.fspath(encoder_json)!r}: {line!r}"
            )
        merges.append((encoder[parts[0]], encoder[parts[1]]))
        merged.add(parts[0] + parts[1])
    ranks, special_tokens = {}, {}
    for token, token_id in encoder.items():
        if token in merged or token in CHAR_TO_BYTE:
            ranks[chars_to_bytes(token)] = token_id
        else:
            special_tokens[token] = token_id
    return Vocabulary(ranks, special_tokens, merges)


# -- Hugging Face tokenizer.json ----------------------------------------------------------


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Every split of every token into two tokens, ordered as described above."""
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda item: item[1]):
        splits = [
            (token[:cut], token[cut:])
            for cut in range(1, len(token))
            if token[:cut] in ranks and token[cut:] in ranks
        ]
        splits.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges.extend(splits)
    return merges


def write_tokenizer_json(
    path: str | os.PathLike[str],
    ranks: Mapping[bytes, int],
    special_tokens: Mapping[str, int],
    pattern: str,
    late_special_tokens: Collection[str] = (),
) -> None:
    """Write the ``tokenizer.json`` described in the module docstring (late special
    tokens as normalized added tokens, matched after the others)."""
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": token_id,
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": token in late_special_tokens,
                "special": token not in late_special_tokens,
            }
            for token, token_id in sorted(special_tokens.items(), key=lambda item: item[1])
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                    "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {bytes_to_chars(token): rank for token, rank in ranks.items()},
            "merges": [
                [bytes_to_chars(left), bytes_to_chars(right)]
                for left, right in merges_from_ranks(ranks)
            ],
        },
    }
    write_atomically(path, json.dumps(document, ensure_ascii=False).encode("utf-8"))


def read_tokenizer_json(path: str | os.PathLike[str]) -> tuple[Vocabulary, str]:
    """The vocabulary and split regex (Oniguruma form) of a byte-level BPE ``tokenizer.json``."""
    name = os.fspath(path)
    with open(path, encoding="utf-8") as file:
        try:
            document = json.load(file)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{name!r} is not a JSON tokenizer file: {exc}") from exc
    try:
        model = document["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"the model type is {model.get('type')!r}, not 'BPE'")
        for option in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(option):
                raise ValueError(f"model option {option}={model[option]!r} is not supported")
        if model.get("byte_fallback"):
            raise ValueError("byte_fallback is for models that are not byte-level")
        if document.get("normalizer") is not None:
            raise ValueError(f"normalizer {document['normalizer'].get('type')!r} is not supported")
        for part in ("post_processor", "decoder"):
            step = document.get(part)
            if step is not None and step.get("type") != "ByteLevel":
                raise ValueError(f"{part.replace('_', '-')} {step.get('type')!r} is not supported")
        pattern = _byte_level_pattern(document.get("pre_tokenizer"))
        special_tokens, late_special_tokens = _added_tokens(document.get("added_tokens") or [])
        vocab: dict[str, int] = model["vocab"]
        merges = _merge_ids(model["merges"], vocab)
        # A special token trained into the vocab is no BPE token: left out of the ranks. An
        # added token whose text is already an ordinary token (a single byte, or what a merge
        # makes) keeps that token's id, as `tokenizers` gives it, and stays one of the ranks.
        made = {"".join(_merge_pair(merge)) for merge in model["merges"]}
        kept = [token for token in vocab
                if token not in special_tokens or len(token) == 1 or token in made]
        for token in special_tokens.keys() & set(kept):
            if chars_to_bytes(token) != token.encode("utf-8"):
                raise ValueError(
                    f"added token {token!r} is also the token {token!r} of the vocabulary, "
                    f"bytes {chars_to_bytes(token)!r} in the byte alphabet; tokenizers gives "
                    "the text that id, which decodes to those other bytes (not supported)"
                )
        ranks = {chars_to_bytes(token): vocab[token] for token in kept}
        missing = missing_single_bytes(ranks)
        if missing:
            raise ValueError(
                f"the vocabulary lacks {len(missing)} of the 256 single bytes (first: "
                f"{bytes(missing[:1])!r}); a byte-level BPE needs them all (train it with "
                "tokenizers' BpeTrainer(initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))"
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{name!r} is not a Hugging Face BPE tokenizer.json: {exc!r}") from exc
    except ValueError as exc:
        raise ValueError(f"{name!r}: {exc}") from exc
    return Vocabulary(ranks, special_tokens, merges, late_special_tokens), pattern


def _byte_level_pattern(pre_tokenizer: dict[str, Any] | None) -> str:
    """The split regex of a ByteLevel pre-tokenizer, alone or after a Split."""
    steps = [] if pre_tokenizer is None else [pre_tokenizer]
    if pre_tokenizer is not None and pre_tokenizer.get("type") == "Sequence":
        steps = pre_tokenizer["pretokenizers"]
    kinds = [step.get("type") for step in steps]
    byte_level = steps[-1] if kinds and kinds[-1] == "ByteLevel" else None
    if byte_level is None or kinds not in (["ByteLevel"], ["Split", "ByteLevel"]):
        raise ValueError(
            f"pre-tokenizer {kinds} is not supported; a byte-level BPE needs ByteLevel, "
            "alone or after a Split"
        )
    if byte_level.get("add_prefix_space"):
        raise ValueError("ByteLevel add_prefix_space=true is not supported")
    if kinds == ["ByteLevel"]:
        if byte_level.get("use_regex", True) is False:
            raise ValueError("ByteLevel without its regex and without a Split splits nothing")
        return GPT2_PATTERN  # what ByteLevel splits with by itself
    split = steps[0]
    if byte_level.get("use_regex", True):
        raise ValueError("Split followed by ByteLevel with use_regex=true splits twice")
    if split.get("behavior") != "Isolated" or split.get("invert"):
        raise ValueError(
            f"Split behavior {split.get('behavior')!r} (invert={split.get('invert')!r}) is not "
            "supported; only 'Isolated' keeps every character"
        )
    regex_source = split["pattern"].get("Regex")
    if not isinstance(regex_source, str):
        raise ValueError(f"Split pattern {split['pattern']!r} is not a regex")
    return regex_source


def _added_tokens(added: list[dict[str, Any]]) -> tuple[dict[str, int], frozenset[str]]:
    """The added tokens (text to id), and those of them that are normalized: `tokenizers`
    matches these after the others (in the text the others leave)."""
    tokens, normalized = {}, set()
    for entry in added:
        for option in ("lstrip", "rstrip", "single_word"):
            if entry.get(option):
                raise ValueError(
                    f"added token {entry['content']!r} has {option}=true, which is not supported"
                )
        tokens[entry["content"]] = entry["id"]
        if entry.get("normalized", not entry.get("special", False)):
            normalized.add(entry["content"])
    return tokens, frozenset(normalized)


def _merge_pair(merge: str | list[str]) -> tuple[str, str]:
    """The two tokens of a ``tokenizer.json`` merge ("left right" or [left, right])."""
    left, right = merge.split(" ") if isinstance(merge, str) else merge
    return left, right


def _merge_ids(merges: list[Any], vocab: dict[str, int]) -> list[tuple[int, int]]:
    """Merges as id pairs; each must make a token with an id no lower than the one before.

    (Several merges making one token, as in our export, are the overlap corner above.)
    """
    pairs = []
    previous = -1
    for number, merge in enumerate(merges):
        left, right = _merge_pair(merge)
        made = vocab.get(left + right)
        if left not in vocab or right not in vocab or made is None:
            raise ValueError(f"merge {number} {merge!r} is not a merge of two tokens into one")
        if made < previous:
            raise ValueError(
                f"merge {number} {merge!r} makes token {made}, below the {previous} of the "
                "merge before it; ranks cannot reproduce this merge order"
            )
        previous = made
        pairs.append((vocab[left], vocab[right]))
    return pairs
