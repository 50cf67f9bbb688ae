"""The byte-level BPE tokenizer: split text with a regex, then merge each chunk's bytes.

Token ids are ranks: byte-level tokens are merged in order of the rank of the concatenated
bytes (tiktoken's rule), so a vocabulary given only as ranks encodes without a merge list.
Special tokens have ids of their own, after the merged tokens when trained here.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .batch import encode_texts
from .byte_pair import encode_chunk
from .chunk_counting import count_chunks, read_files
from .decoding import StreamDecoder, check_errors
from .file_format import read_document, write_document
from .gpt2_files import read_gpt2_files
from .huggingface_file import write_tokenizer_json
from .patterns import SplitPattern
from .progress import ProgressCallback, resolve_progress
from .special_tokens import SpecialSet, SpecialTokens
from .surrogates import replace_surrogates
from .tiktoken_file import read_ranks, write_ranks
from .token_table import TokenTable
from .training import MAX_TOKENS, TIE_BREAKS, learn_merges

ENDOFTEXT = "<|endoftext|>"

# The chunk cache is dropped when it holds this many chunks; longer chunks are not kept.
CACHE_MAX_ENTRIES = 1 << 18
CACHE_MAX_CHUNK_CHARS = 256
# Texts are split and encoded in pieces of about this many characters.
ENCODE_PIECE_CHARS = 1 << 20

PathLike = str | os.PathLike[str]


class Tokenizer:
    """Byte-level BPE over a split pattern, with tiktoken's encoding semantics.

    ``ranks`` maps token bytes to ids and must include all 256 single bytes. ``pattern`` is
    ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or a regex. ``merges`` optionally records the
    pairs in the order training learned them; encoding never needs them.
    """

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        *,
        pattern: str | SplitPattern = "gpt2",
        special_tokens: Mapping[str, int] | None = None,
        merges: Iterable[tuple[int, int]] = (),
    ) -> None:
        self._ranks = _checked_ranks(ranks)
        token_bytes = {token: data for data, token in self._ranks.items()}
        self._merges = _checked_merges(merges, self._ranks, token_bytes)
        self._pattern = SplitPattern.resolve(pattern)
        self._specials = SpecialTokens(special_tokens or {})
        for token, token_id in self._specials.ids.items():
            if token_id in token_bytes:
                raise ValueError(f"special token {token!r} reuses id {token_id} of a BPE token")
            token_bytes[token_id] = token.encode("utf-8")
        self._table = TokenTable(token_bytes)
        self._cache: dict[str, str] = {}

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        *,
        vocab_size: int,
        pattern: str | SplitPattern = "gpt2",
        special_tokens: Sequence[str] = (),
        min_frequency: int = 1,
        tie_break: str = "huggingface",
        progress: bool | ProgressCallback = False,
        num_workers: int | None = None,
    ) -> Tokenizer:
        """Learn a tokenizer from a text or an iterable of texts (each split on its own).

        ``vocab_size`` counts the 256 bytes, the merged tokens and the ``special_tokens``
        (which get the last ids). Training stops early, with a smaller vocabulary, when no
        pair occurs at least ``min_frequency`` times. ``tie_break`` is ``"huggingface"``
        (reproduces Hugging Face's BpeTrainer) or ``"byte-value"``; see
        :mod:`bpe.training`. ``progress`` is True (stderr) or a callback.
        """
        options = _TrainingOptions(vocab_size, pattern, special_tokens, min_frequency, tie_break)
        if isinstance(texts, str):
            texts = [texts]
        return options.run(cls, texts, progress, num_workers)

    @classmethod
    def train_from_files(
        cls,
        paths: Iterable[PathLike],
        *,
        vocab_size: int,
        pattern: str | SplitPattern = "gpt2",
        special_tokens: Sequence[str] = (),
        min_frequency: int = 1,
        tie_break: str = "huggingface",
        progress: bool | ProgressCallback = False,
        num_workers: int | None = None,
    ) -> Tokenizer:
        """Like :meth:`train`, on UTF-8 text files (each file a text of its own)."""
        options = _TrainingOptions(vocab_size, pattern, special_tokens, min_frequency, tie_break)
        paths = list(paths)
        for path in paths:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"training file not found: {os.fspath(path)!r}")
        texts = read_files(paths, options.pattern, options.specials)
        return options.run(cls, texts, progress, num_workers)

    # -- vocabulary -------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (BPE tokens and special tokens)."""
        return self._table.size

    @property
    def pattern(self) -> SplitPattern:
        return self._pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token strings and their ids (a copy)."""
        return dict(self._specials.ids)

    @property
    def eot(self) -> int | None:
        """The id of ``<|endoftext|>``, or None when this tokenizer has no such token."""
        return self._specials.ids.get(ENDOFTEXT)

    def special_token_id(self, token: str) -> int:
        """The id of a special token; ValueError naming the known ones if it is not one."""
        try:
            return self._specials.ids[token]
        except KeyError:
            raise ValueError(
                f"{token!r} is not a special token of this tokenizer "
                f"(special tokens: {sorted(self._specials.ids)})"
            ) from None

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """Token bytes to id for the BPE tokens, as tiktoken calls them (a copy)."""
        return dict(self._ranks)

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The (left, right) id pairs in the order training learned them (may be empty)."""
        return list(self._merges)

    # -- encoding ---------------------------------------------------------------------------

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[int]:
        """Token ids of ``text``; special tokens follow tiktoken (see :mod:`bpe.special_tokens`)."""
        allowed, disallowed = self._specials.resolve(allowed_special, disallowed_special)
        self._specials.check(_checked_text(text), disallowed)
        return self._encode_allowing(text, allowed)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text`` with special tokens treated as plain text."""
        text = _checked_text(text)
        try:
            encoded = self._encode_text(text)
        except UnicodeEncodeError:
            encoded = self._encode_text(replace_surrogates(text))
        return np.frombuffer(encoded.encode("utf-32-le", "surrogatepass"), np.uint32).tolist()

    def encode_batch(
        self,
        texts: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_workers: int | None = None,
        as_numpy: bool = False,
    ) -> list[list[int]] | list[np.ndarray]:
        """Encode each text, in worker processes when the input is large (see :mod:`bpe.batch`).

        Returns lists of ids, or with ``as_numpy`` arrays of the smallest unsigned dtype
        that holds ``vocab_size``.
        """
        texts = [_checked_text(text) for text in texts]
        allowed, disallowed = self._specials.resolve(allowed_special, disallowed_special)
        for text in texts:
            self._specials.check(text, disallowed)
        return encode_texts(self, texts, allowed, num_workers=num_workers, as_numpy=as_numpy)

    def _encode_allowing(self, text: str, allowed: frozenset[str]) -> list[int]:
        """Encode with ``allowed`` special tokens as ids and everything else as text."""
        ids: list[int] = []
        position = 0
        for match in self._specials.find(text, allowed):
            ids += self.encode_ordinary(text[position : match.start()])
            ids.append(self._specials.ids[match.group()])
            position = match.end()
        ids += self.encode_ordinary(text[position:])
        return ids

    def _encode_text(self, text: str) -> str:
        """The ids of ``text`` as one str holding ``chr(id)`` per token (see _encode_chunks).

        Long texts go through in pieces cut where the split cannot change, which bounds the
        memory taken by the list of chunks.
        """
        pieces = self._pattern.cut(text, ENCODE_PIECE_CHARS)
        return "".join(self._encode_chunks(self._pattern.split(piece)) for piece in pieces)

    def _encode_chunks(self, chunks: list[str]) -> str:
        """The ids of the chunks as one str holding ``chr(id)`` per token.

        Each distinct chunk is encoded once and cached as such a str, so the whole result is
        one C-level join (ids fit in characters: they are below MAX_TOKENS).
        """
        cache = self._cache
        if len(cache) > CACHE_MAX_ENTRIES:
            self._cache = cache = {}
        missing = set(chunks).difference(cache)
        for chunk in missing:
            cache[chunk] = "".join(map(chr, encode_chunk(chunk.encode("utf-8"), self._ranks)))
        encoded = "".join(map(cache.__getitem__, chunks))
        for chunk in missing:
            if len(chunk) > CACHE_MAX_CHUNK_CHARS:
                del cache[chunk]
        return encoded

    # -- decoding ---------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of the tokens ``ids`` (a list, any iterable of ints, or an array)."""
        return self._table.join(ids)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of ``ids``; invalid UTF-8 is handled by ``errors`` ("replace", "strict")."""
        return self.decode_bytes(ids).decode("utf-8", check_errors(errors))

    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes of one token."""
        return self.decode_bytes([token])

    def stream_decoder(self, errors: str = "replace") -> StreamDecoder:
        """A decoder for ids that arrive a few at a time (see :mod:`bpe.decoding`)."""
        return StreamDecoder(self.decode_bytes, errors)

    # -- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fields of our JSON file format (see :mod:`bpe.file_format`)."""
        return {
            "pattern": {"name": self._pattern.name, "regex": self._pattern.source},
            "tokens": [
                [token, base64.b64encode(data).decode("ascii")]
                for data, token in sorted(self._ranks.items(), key=lambda item: item[1])
            ],
            "special_tokens": dict(self._specials.ids),
            "merges": [list(pair) for pair in self._merges],
        }

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_dict`."""
        try:
            pattern = fields["pattern"]
            tokens = fields["tokens"]
            ranks = {base64.b64decode(data, validate=True): token for token, data in tokens}
            return cls(
                ranks,
                pattern=pattern["name"] or pattern["regex"],
                special_tokens=fields["special_tokens"],
                merges=[tuple(pair) for pair in fields["merges"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed byte-bpe tokenizer fields: {exc!r}") from exc

    def save(self, path: PathLike) -> None:
        """Save in our JSON format (pattern, special tokens and merges included)."""
        write_document(path, "byte-bpe", self.to_dict())

    @classmethod
    def load(cls, path: PathLike) -> Tokenizer:
        """Load a file written by :meth:`save`."""
        kind, fields = read_document(path)
        if kind != "byte-bpe":
            raise ValueError(f"{os.fspath(path)!r} holds a {kind!r} tokenizer; use bpe.load()")
        return cls.from_dict(fields)

    @classmethod
    def from_tiktoken(
        cls,
        path: PathLike,
        *,
        pattern: str | SplitPattern,
        special_tokens: Mapping[str, int] | None = None,
    ) -> Tokenizer:
        """Load a tiktoken rank file (plain or gzipped); it stores no pattern or specials."""
        return cls(read_ranks(path), pattern=pattern, special_tokens=special_tokens)

    def save_tiktoken(self, path: PathLike) -> None:
        """Write the ranks as a tiktoken file (gzipped if the name ends in .gz)."""
        write_ranks(path, self._ranks)

    @classmethod
    def from_gpt2(
        cls, encoder_json: PathLike, vocab_bpe: PathLike, *, pattern: str | SplitPattern = "gpt2"
    ) -> Tokenizer:
        """Load GPT-2's ``encoder.json`` and ``vocab.bpe``."""
        vocabulary = read_gpt2_files(encoder_json, vocab_bpe)
        return cls(
            vocabulary.ranks,
            pattern=pattern,
            special_tokens=vocabulary.special_tokens,
            merges=vocabulary.merges,
        )

    def save_huggingface(self, path: PathLike) -> None:
        """Write a Hugging Face ``tokenizer.json`` (see :mod:`bpe.huggingface_file`)."""
        write_tokenizer_json(
            path, self._ranks, self._specials.ids, self._pattern.oniguruma_source
        )

    # -- plumbing ---------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, pattern={self._pattern!r}, "
            f"special_tokens={len(self._specials.ids)})"
        )


class _TrainingOptions:
    """Training options, checked before any text is read."""

    def __init__(
        self,
        vocab_size: int,
        pattern: str | SplitPattern,
        special_tokens: Sequence[str],
        min_frequency: int,
        tie_break: str,
    ) -> None:
        if isinstance(special_tokens, str):
            raise TypeError(f"special_tokens must be a sequence of str, got {special_tokens!r}")
        self.special_tokens = list(special_tokens)
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"special_tokens has duplicates: {self.special_tokens}")
        self.specials = SpecialTokens({token: i for i, token in enumerate(self.special_tokens)})
        smallest = 257 + len(self.special_tokens)
        largest = MAX_TOKENS + len(self.special_tokens)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
        if not smallest <= vocab_size <= largest:
            raise ValueError(
                f"vocab_size must be above 256 + {len(self.special_tokens)} special tokens "
                f"(at least {smallest}) and at most {largest}, got {vocab_size}"
            )
        self.vocab_size = vocab_size
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int):
            raise TypeError(f"min_frequency must be an int, got {min_frequency!r}")
        if min_frequency < 0:
            raise ValueError(f"min_frequency must be >= 0, got {min_frequency}")
        self.min_frequency = min_frequency
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {sorted(TIE_BREAKS)}, got {tie_break!r}")
        self.tie_break = tie_break
        self.pattern = SplitPattern.resolve(pattern)

    def run(
        self,
        cls: type[Tokenizer],
        texts: Iterable[str],
        progress: bool | ProgressCallback,
        num_workers: int | None,
    ) -> Tokenizer:
        report = resolve_progress(progress)
        counts = count_chunks(
            texts,
            self.pattern,
            special_tokens=self.specials,
            num_workers=num_workers,
            progress=report,
        )
        if not counts:
            raise ValueError("the training corpus is empty: there is no text to learn from")
        learned = learn_merges(
            counts,
            num_tokens=self.vocab_size - len(self.special_tokens),
            min_frequency=self.min_frequency,
            tie_break=self.tie_break,
            progress=report,
        )
        ranks = {data: token for token, data in enumerate(learned.token_bytes)}
        specials = {token: len(ranks) + index for index, token in enumerate(self.special_tokens)}
        return cls(ranks, pattern=self.pattern, special_tokens=specials, merges=learned.merges)


def _checked_ranks(ranks: Mapping[bytes, int]) -> dict[bytes, int]:
    checked = {}
    for data, token in ranks.items():
        if not isinstance(data, bytes) or not data:
            raise ValueError(f"ranks must map non-empty bytes to ids, got key {data!r}")
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < MAX_TOKENS:
            raise ValueError(f"ranks must map bytes to ids in 0..{MAX_TOKENS - 1}, got {token!r}")
        checked[data] = token
    if len(set(checked.values())) != len(checked):
        raise ValueError("ranks must give every token a distinct id")
    missing = [byte for byte in range(256) if bytes([byte]) not in checked]
    if missing:
        raise ValueError(
            f"ranks lack {len(missing)} single bytes (first: {bytes([missing[0]])!r}); "
            "byte-level BPE needs all 256 bytes as tokens"
        )
    return checked


def _checked_merges(
    merges: Iterable[tuple[int, int]], ranks: dict[bytes, int], token_bytes: dict[int, bytes]
) -> list[tuple[int, int]]:
    checked = []
    for number, pair in enumerate(merges):
        try:
            left, right = pair
            joined = token_bytes[left] + token_bytes[right]
        except (TypeError, ValueError, KeyError):
            raise ValueError(f"merge {number} must be a pair of token ids, got {pair!r}") from None
        if joined not in ranks:
            raise ValueError(f"merge {number} {pair!r} joins into {joined!r}, which is no token")
        checked.append((left, right))
    return checked


def _checked_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text
