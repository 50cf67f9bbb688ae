"""The byte-level BPE tokenizer: split text with a regex, then merge each chunk's bytes.

:class:`Tokenizer` is the facade over the other modules: it checks a vocabulary, and hands
training to :mod:`bpe.training`, encoding to :mod:`bpe.encoding`, decoding to
:mod:`bpe.decoding` and files to :mod:`bpe.files`. :func:`load` reads either kind of
tokenizer (this one or :class:`~bpe.char_tokenizer.CharTokenizer`) from our JSON format.

Token ids are ranks: byte-level tokens are merged in order of the rank of the concatenated
bytes (tiktoken's rule), so a vocabulary given only as ranks encodes without a merge list.
Special tokens have ids of their own, after the merged tokens when trained here.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from .char_tokenizer import CharTokenizer
from .decoding import StreamDecoder, TokenTable, check_errors
from .encoding import Encoder
from .files import (
    Vocabulary,
    missing_single_bytes,
    read_document,
    read_gpt2_files,
    read_ranks,
    read_tokenizer_json,
    write_document,
    write_ranks,
    write_tokenizer_json,
)
from .patterns import NAMED_PATTERNS, SplitPattern
from .progress import ProgressCallback
from .special_tokens import SpecialSet, SpecialTokens
from .training import MAX_TOKENS, TrainingOptions, read_files, read_stream
from .workers import resolve_workers

ENDOFTEXT = "<|endoftext|>"

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
        late_special_tokens: Collection[str] = (),
    ) -> None:
        self._ranks = _checked_ranks(ranks)
        token_bytes = {token: data for data, token in self._ranks.items()}
        self._merges = _checked_merges(merges, self._ranks, token_bytes)
        self._pattern = SplitPattern.resolve(pattern)
        self._specials = SpecialTokens(special_tokens or {}, late_special_tokens)
        for token, token_id in self._specials.ids.items():
            data = token.encode("utf-8")
            # A special token may name a BPE token by its own text (Hugging Face's added
            # tokens do): the same id and bytes. Any other reuse of an id is an error.
            if token_bytes.setdefault(token_id, data) != data:
                raise ValueError(f"special token {token!r} reuses id {token_id} of the BPE "
                                 f"token {token_bytes[token_id]!r}")
        self._table = TokenTable(token_bytes)
        self._encoder = Encoder(self._ranks, self._pattern, self._specials)

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
        options = TrainingOptions(vocab_size, pattern, special_tokens, min_frequency, tie_break)
        if isinstance(texts, str):
            texts = [texts]
        return cls._from_vocabulary(options.learn(texts, progress, num_workers), options.pattern)

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
        options = TrainingOptions(vocab_size, pattern, special_tokens, min_frequency, tie_break)
        paths = list(paths)
        for path in paths:
            if os.path.isdir(path):
                raise IsADirectoryError(f"training file {os.fspath(path)!r} is a directory; "
                                        "pass the text files in it")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"training file not found: {os.fspath(path)!r}")
        texts = read_files(paths, options.pattern, options.specials)
        return cls._from_vocabulary(options.learn(texts, progress, num_workers), options.pattern)

    @classmethod
    def _from_vocabulary(cls, vocabulary: Vocabulary, pattern: str | SplitPattern) -> Tokenizer:
        return cls(
            vocabulary.ranks,
            pattern=pattern,
            special_tokens=vocabulary.special_tokens,
            merges=vocabulary.merges,
            late_special_tokens=vocabulary.late_special_tokens,
        )

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
        return self._encoder.encode_allowing(text, allowed)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text`` with special tokens treated as plain text."""
        return self._encoder.encode_ordinary(_checked_text(text))

    def encode_batch(
        self,
        texts: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_workers: int | None = None,
        as_numpy: bool = False,
    ) -> list[list[int]] | list[np.ndarray]:
        """Encode each text, in worker processes when the input is large (see :mod:`bpe.encoding`).

        Returns lists of ids, or with ``as_numpy`` arrays of the smallest unsigned dtype
        that holds ``vocab_size``.
        """
        texts = [_checked_text(text) for text in texts]
        allowed, disallowed = self._specials.resolve(allowed_special, disallowed_special)
        for text in texts:
            self._specials.check(text, disallowed)
        return self._encoder.encode_texts(
            texts, allowed, num_workers=num_workers, as_numpy=as_numpy
        )

    def encode_file(
        self,
        source: PathLike | TextIO,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_workers: int | None = 1,
    ) -> Iterator[np.ndarray]:
        """The ids of a UTF-8 text file (a path, or a text stream such as stdin opened with
        ``newline=""``), piece by piece, without reading it whole.

        The text is read in blocks of about a megabyte and cut where the split cannot change
        (see :meth:`SplitPattern.cut`; never inside an allowed or disallowed string), so the
        concatenated arrays equal ``encode`` of the whole text, and memory stays that of a
        few blocks. The pieces are encoded on ``num_workers`` processes (None: every core),
        in order. Custom patterns have no safe cuts: their files are read whole.
        """
        allowed, disallowed = self._specials.resolve(allowed_special, disallowed_special)
        guarded = SpecialTokens({token: n for n, token in enumerate(sorted(allowed | disallowed))})
        if isinstance(source, (str, os.PathLike)):
            pieces = read_files([source], self._pattern, guarded)
        else:
            pieces = read_stream(source, self._pattern, guarded)
        return self.encode_pieces(pieces, allowed_special=allowed_special,
                                  disallowed_special=disallowed_special, num_workers=num_workers)

    def encode_pieces(
        self,
        pieces: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_workers: int | None = 1,
    ) -> Iterator[np.ndarray]:
        """The ids of each piece of a text cut where the split cannot change (as
        :func:`bpe.training.read_stream` and :meth:`SplitPattern.cut` cut it, never inside a
        special token), in order, as arrays; encoded on ``num_workers`` processes (None:
        every core) that read only a few pieces ahead."""
        allowed, disallowed = self._specials.resolve(allowed_special, disallowed_special)

        def checked() -> Iterator[str]:
            for piece in pieces:
                self._specials.check(_checked_text(piece), disallowed)
                yield piece

        return self._encoder.encode_pieces(checked(), allowed, resolve_workers(num_workers))

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
        """The fields of our JSON file format (see :mod:`bpe.files`)."""
        return {
            "pattern": {"name": self._pattern.name, "regex": self._pattern.source},
            "tokens": [
                [token, base64.b64encode(data).decode("ascii")]
                for data, token in sorted(self._ranks.items(), key=lambda item: item[1])
            ],
            "special_tokens": dict(self._specials.ids),
            "merges": [list(pair) for pair in self._merges],
        } | ({"late_special_tokens": sorted(self._specials.late)} if self._specials.late
             else {})

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_dict`."""
        try:
            pattern = fields["pattern"]
            if pattern["name"] is not None and pattern["name"] not in NAMED_PATTERNS:
                raise ValueError(f"unknown pattern name {pattern['name']!r} (known: "
                                 f"{', '.join(NAMED_PATTERNS)}; a custom pattern has name null)")
            tokens = fields["tokens"]
            ranks = {base64.b64decode(data, validate=True): token for token, data in tokens}
            return cls(
                ranks,
                pattern=pattern["name"] or pattern["regex"],
                special_tokens=fields["special_tokens"],
                merges=[tuple(pair) for pair in fields["merges"]],
                late_special_tokens=fields.get("late_special_tokens", ()),
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
        ranks = read_ranks(path)
        try:
            return cls(ranks, pattern=pattern, special_tokens=special_tokens)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)!r}: {exc}") from exc

    def save_tiktoken(self, path: PathLike) -> None:
        """Write the ranks as a tiktoken file (gzipped if the name ends in .gz)."""
        write_ranks(path, self._ranks)

    @classmethod
    def from_gpt2(
        cls, encoder_json: PathLike, vocab_bpe: PathLike, *, pattern: str | SplitPattern = "gpt2"
    ) -> Tokenizer:
        """Load GPT-2's ``encoder.json`` and ``vocab.bpe``."""
        return cls._from_vocabulary(read_gpt2_files(encoder_json, vocab_bpe), pattern)

    @classmethod
    def from_huggingface(cls, path: PathLike) -> Tokenizer:
        """Load a byte-level BPE ``tokenizer.json`` of Hugging Face (see :mod:`bpe.files`)."""
        vocabulary, pattern = read_tokenizer_json(path)
        try:
            return cls._from_vocabulary(vocabulary, SplitPattern.from_oniguruma(pattern))
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)!r}: {exc}") from exc

    def save_huggingface(self, path: PathLike) -> None:
        """Write a Hugging Face ``tokenizer.json`` (see :mod:`bpe.files`)."""
        write_tokenizer_json(path, self._ranks, self._specials.ids,
                             self._pattern.oniguruma_source, self._specials.late)

    # -- plumbing ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, pattern={self._pattern!r}, "
            f"special_tokens={len(self._specials.ids)})"
        )


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
    missing = missing_single_bytes(checked)
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


_KINDS = {"byte-bpe": Tokenizer, "char": CharTokenizer}


def load(path: PathLike) -> Tokenizer | CharTokenizer:
    """The tokenizer saved at ``path`` by ``Tokenizer.save`` or ``CharTokenizer.save``."""
    kind, fields = read_document(path)
    try:
        return _KINDS[kind].from_dict(fields)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)!r}: {exc}") from None
