"""SentencePiece BPE models (``.model`` files, as Llama 2 and Mistral ship): read, write,
encode, decode.

A ``.model`` file is a protobuf ``ModelProto``, read and written here by hand
(:func:`read_protobuf`, :func:`write_protobuf`), no dependency needed. The fields used
(numbers from sentencepiece_model.proto):

- ``pieces`` (1), each ``piece`` (1, str), ``score`` (2, float32), ``type`` (3: 1 normal,
  2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte);
- ``trainer_spec`` (2): ``model_type`` (3, 2 is BPE), ``treat_whitespace_as_suffix`` (24),
  ``byte_fallback`` (35), ``unk_surface`` (44, what decoding writes for the unknown piece);
- ``normalizer_spec`` (3): ``name`` (1), ``precompiled_charsmap`` (2), ``add_dummy_prefix``
  (3), ``remove_extra_whitespaces`` (4), ``escape_whitespaces`` (5).

:meth:`SentencePieceTokenizer.save` writes these fields (the name ``identity``, no character
map, no ``treat_whitespace_as_suffix``) and ``trainer_spec.vocab_size`` (4); sentencepiece
takes its defaults for all others, such as ``<s>`` and ``</s>`` for the names of the
begin and end pieces. :mod:`bpe.sentencepiece_training` trains such models.

This is not byte-level BPE: pieces are strings of characters, and their scores, not ids,
order the merges. Encoding, as the sentencepiece library does it:

1. Normalize: with ``remove_extra_whitespaces``, drop leading spaces and squeeze runs of
   spaces into one; with ``add_dummy_prefix``, put a space in front; with
   ``escape_whitespaces``, write each space as ``▁`` (U+2581); with
   ``remove_extra_whitespaces`` again, drop trailing ``▁`` (a ``▁`` in the text included).
   Only the ``identity`` rule (no character map) is supported, which is what Llama 2 and
   Mistral use; NFKC models (sentencepiece's default) are refused with a clear error.
2. Split into symbols: a user-defined piece where one starts (longest first), else one
   character.
3. Repeatedly merge the adjacent pair whose concatenation is a piece with the highest score,
   the leftmost on ties, until no adjacent concatenation is a piece.
4. A symbol that is no piece is unknown: with ``byte_fallback``, its UTF-8 bytes become the
   ``<0xXX>`` byte pieces; otherwise it is the unknown id, and a run of unknown symbols
   becomes one unknown id.

Decoding: control pieces write nothing, the unknown piece writes ``unk_surface`` (`` ⁇ ``),
runs of byte pieces are decoded as UTF-8 (each invalid byte becomes U+FFFD), ``▁`` becomes
a space, and while nothing has been written yet a leading ``▁`` is dropped (the dummy prefix).

Pieces never hold ``▁`` after their first character in models trained with sentencepiece's
defaults; then merges never cross a ``▁`` and each word (``▁`` and what follows up to the next
``▁``) is encoded once and cached. Otherwise the whole text is merged at once.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from heapq import heapify, heappop, heappush
from typing import Any

from .files import write_atomically

SPACE = "\u2581"
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
BPE_MODEL = 2
_CACHE_MAX_ENTRIES = 1 << 16


# -- protobuf, by hand --------------------------------------------------------------------


def read_protobuf(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """The (field number, wire type, value) of each field of one protobuf message.

    Varints (wire type 0) are ints, length-delimited fields (2) bytes, fixed32 (5) and
    fixed64 (1) the raw 4 or 8 bytes. Raises ValueError on truncated or malformed data.
    """
    position = 0
    size = len(data)

    def varint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            if position >= size or shift > 63:
                raise ValueError(f"protobuf varint at byte {position} is truncated")
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while position < size:
        start = position
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value: Any = varint()
        elif wire_type in (1, 2, 5):
            length = {1: 8, 5: 4}.get(wire_type) or varint()
            value = data[position : position + length]
            if len(value) != length:
                raise ValueError(f"protobuf field {number} at byte {start} is truncated")
            position += length
        else:
            raise ValueError(f"protobuf field {number} at byte {start} has wire type {wire_type}")
        if number == 0:
            raise ValueError(f"protobuf field number 0 at byte {start}")
        yield number, wire_type, value


def write_protobuf(fields: Iterable[tuple[int, int, Any]]) -> bytes:
    """One protobuf message of ``(field number, wire type, value)`` fields: the inverse of
    :func:`read_protobuf` (varints are non-negative ints, the other wire types bytes)."""
    out = bytearray()
    for number, wire_type, value in fields:
        out += _varint(number << 3 | wire_type)
        if wire_type == 0:
            out += _varint(value)
        elif wire_type == 2:
            out += _varint(len(value)) + value
        elif wire_type in (1, 5) and len(value) == {1: 8, 5: 4}[wire_type]:
            out += value
        else:
            raise ValueError(f"protobuf field {number}: cannot write {value!r} as wire type "
                             f"{wire_type}")
    return bytes(out)


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"protobuf varints are written for non-negative ints, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(data: bytes) -> dict[int, list[Any]]:
    fields: dict[int, list[Any]] = {}
    for number, _, value in read_protobuf(data):
        fields.setdefault(number, []).append(value)
    return fields


def _last(fields: dict[int, list[Any]], number: int, default: Any) -> Any:
    return fields[number][-1] if number in fields else default


# -- the model ----------------------------------------------------------------------------


def normalize(
    text: str,
    *,
    add_dummy_prefix: bool = True,
    remove_extra_whitespaces: bool = True,
    escape_whitespaces: bool = True,
    user_defined: Sequence[str] = (),
) -> str:
    """Step 1: spaces squeezed, the dummy prefix, spaces written as ``▁``. Pass the
    user-defined pieces (longest first) when one holds a space: sentencepiece squeezes
    around them, never inside."""
    if remove_extra_whitespaces and user_defined:
        text = _squeeze_spaces_around(text, user_defined)
    elif remove_extra_whitespaces:
        text = " ".join(part for part in text.split(" ") if part)
    if add_dummy_prefix and text:
        text = " " + text
    if escape_whitespaces:
        text = text.replace(" ", SPACE)
    if remove_extra_whitespaces:  # also a ▁ of the text itself, as sentencepiece does
        text = text.rstrip(SPACE if escape_whitespaces else " ")
    return text


def _squeeze_spaces_around(text: str, user_defined: Sequence[str]) -> str:
    """sentencepiece's whitespace removal, unit by unit, a unit being a user-defined piece
    where one starts, else one character: leading lone spaces dropped, a unit's leading
    spaces dropped after a unit that ended in a space (so "a" + "  " + " " + "b" keeps
    "a  b"). The trailing space is left for `normalize` to drop."""
    def unit_at(position: int) -> str:
        for piece in user_defined:
            if text.startswith(piece, position):
                return piece
        return text[position]

    position = 0
    while position < len(text) and unit_at(position) == " ":
        position += 1
    out, after_space = [], True
    while position < len(text):
        unit = unit_at(position)
        position += len(unit)
        kept = unit.lstrip(" ") if after_space else unit
        if kept:
            out.append(kept)
            after_space = kept.endswith(" ")
    return "".join(out)


class SentencePieceTokenizer:
    """A SentencePiece BPE model: ``encode(text) -> ids``, ``decode(ids) -> text``."""

    def __init__(
        self,
        pieces: list[tuple[str, float, int]],
        *,
        byte_fallback: bool = False,
        add_dummy_prefix: bool = True,
        remove_extra_whitespaces: bool = True,
        escape_whitespaces: bool = True,
        unk_surface: str = " \u2047 ",
    ) -> None:
        self.pieces = list(pieces)
        self.byte_fallback = byte_fallback
        self.add_dummy_prefix = add_dummy_prefix
        self.remove_extra_whitespaces = remove_extra_whitespaces
        self.escape_whitespaces = escape_whitespaces
        self.unk_surface = unk_surface
        self._ids: dict[str, int] = {}  # normal and user-defined pieces: what text can be
        self._scores: dict[str, float] = {}
        self._byte_ids: dict[int, int] = {}
        self._user_defined: list[str] = []
        self._unknown: int | None = None
        for token_id, (piece, score, kind) in enumerate(self.pieces):
            if kind in (NORMAL, USER_DEFINED):
                self._ids.setdefault(piece, token_id)
                self._scores.setdefault(piece, score)
                if kind == USER_DEFINED:
                    self._user_defined.append(piece)
            elif kind == BYTE:
                self._byte_ids[_byte_of(piece)] = token_id
            elif kind == UNKNOWN:
                self._unknown = token_id
            elif kind == UNUSED:
                raise ValueError(f"piece {token_id} {piece!r} is unused; such models are not "
                                 "supported")
            elif kind != CONTROL:
                raise ValueError(f"piece {token_id} {piece!r} has unknown type {kind}")
        if self._unknown is None:
            raise ValueError("the model has no unknown piece")
        if byte_fallback and len(self._byte_ids) != 256:
            raise ValueError(f"byte_fallback needs 256 byte pieces, the model has "
                             f"{len(self._byte_ids)}")
        self._user_defined.sort(key=len, reverse=True)
        self._frozen = frozenset(self._user_defined)  # never merged with a neighbour
        # Whitespace removal goes piece by piece only if a user-defined piece holds a space.
        self._squeeze_units = (tuple(self._user_defined)
                               if any(" " in piece for piece in self._user_defined) else ())
        self._by_word = not any(SPACE in piece[1:] for piece in self._ids)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SentencePieceTokenizer:
        """Read a ``.model`` file (see the module docstring for what is supported)."""
        with open(path, "rb") as file:
            data = file.read()
        try:
            return cls.from_bytes(data)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)!r} is not a supported SentencePiece BPE model: "
                             f"{exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> SentencePieceTokenizer:
        """Parse a serialized ``ModelProto``."""
        model = _fields(data)
        trainer = _fields(_last(model, 2, b""))
        normalizer = _fields(_last(model, 3, b""))
        model_type = _last(trainer, 3, 1)
        if model_type != BPE_MODEL:
            kind = {1: "unigram", 3: "word", 4: "char"}.get(model_type, model_type)
            raise ValueError(f"model_type is {kind!r}; only BPE models are supported")
        if _last(trainer, 24, 0):
            raise ValueError("treat_whitespace_as_suffix is not supported")
        charsmap = _last(normalizer, 2, b"")
        if charsmap:
            name = _last(normalizer, 1, b"").decode("utf-8", "replace")
            raise ValueError(f"normalization rule {name!r} (a character map) is not supported; "
                             "only 'identity' is")
        pieces = []
        for entry in model.get(1, []):
            fields = _fields(entry)
            try:
                piece = _last(fields, 1, b"").decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"piece {len(pieces)} is not UTF-8") from exc
            score = struct.unpack("<f", _last(fields, 2, b"\0\0\0\0"))[0]
            pieces.append((piece, score, _last(fields, 3, NORMAL)))
        if not pieces:
            raise ValueError("the model has no pieces")
        return cls(
            pieces,
            byte_fallback=bool(_last(trainer, 35, 0)),
            add_dummy_prefix=bool(_last(normalizer, 3, 1)),
            remove_extra_whitespaces=bool(_last(normalizer, 4, 1)),
            escape_whitespaces=bool(_last(normalizer, 5, 1)),
            unk_surface=_last(trainer, 44, " \u2047 ".encode()).decode("utf-8"),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a ``.model`` file that this class and ``sentencepiece`` both load."""
        write_atomically(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """This model as a serialized ``ModelProto`` (the fields in the module docstring)."""
        pieces = [
            (1, 2, write_protobuf([(1, 2, piece.encode("utf-8")),
                                   (2, 5, struct.pack("<f", score)), (3, 0, kind)]))
            for piece, score, kind in self.pieces
        ]
        trainer_spec = write_protobuf([
            (3, 0, BPE_MODEL), (4, 0, self.vocab_size), (35, 0, int(self.byte_fallback)),
            (44, 2, self.unk_surface.encode("utf-8")),
        ])
        normalizer_spec = write_protobuf([  # every option, so that no reader's default decides
            (1, 2, b"identity"), (3, 0, int(self.add_dummy_prefix)),
            (4, 0, int(self.remove_extra_whitespaces)), (5, 0, int(self.escape_whitespaces)),
        ])
        return write_protobuf([*pieces, (2, 2, trainer_spec), (3, 2, normalizer_spec)])

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, token: int) -> str:
        return self.pieces[token][0]

    # -- encoding ---------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Step 1 with this model's options (see :func:`normalize`)."""
        return normalize(text, add_dummy_prefix=self.add_dummy_prefix,
                         remove_extra_whitespaces=self.remove_extra_whitespaces,
                         escape_whitespaces=self.escape_whitespaces,
                         user_defined=self._squeeze_units)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, as ``sentencepiece``'s ``encode`` gives them."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # sentencepiece cannot take such a str either
            raise ValueError(f"SentencePiece encode: the text holds a lone surrogate "
                             f"U+{ord(text[exc.start]):04X} at position {exc.start}, which is "
                             "no character (UTF-8 cannot hold it)") from None
        normalized = self.normalize(text)
        if not self._by_word:
            return self._ids_of(self._merge(self._symbols(normalized)))
        ids: list[int] = []
        cache = self._cache
        if len(cache) > _CACHE_MAX_ENTRIES:
            cache.clear()
        start = 0
        while start < len(normalized):
            end = normalized.find(SPACE, start + 1)
            end = len(normalized) if end < 0 else end
            word = normalized[start:end]
            encoded = cache.get(word)
            if encoded is None:
                encoded = cache[word] = self._ids_of(self._merge(self._symbols(word)))
            if ids and encoded and encoded[0] == self._unknown and ids[-1] == self._unknown:
                encoded = encoded[1:]  # a run of unknown symbols across words is one id
            ids += encoded
            start = end
        return ids

    def _symbols(self, text: str) -> list[str]:
        """Step 2: user-defined pieces where they start, other characters one by one."""
        if not self._user_defined:
            return list(text)
        symbols = []
        position = 0
        while position < len(text):
            for piece in self._user_defined:
                if text.startswith(piece, position):
                    break
            else:
                piece = text[position]
            symbols.append(piece)
            position += len(piece)
        return symbols

    def _merge(self, symbols: list[str]) -> list[str]:
        """Step 3: merge the best-scoring adjacent pair, leftmost first, until none is left.
        A user-defined piece stays whole and alone, as in sentencepiece (it "freezes" them)."""
        scores, frozen = self._scores, self._frozen
        size = len(symbols)
        parts: list[str | None] = list(symbols)
        next_index = list(range(1, size + 1))
        prev_index = list(range(-1, size - 1))
        # Queue entries: (-score, left index, the pair's text); stale when the parts changed.
        queue = []
        for left in range(size - 1):
            if symbols[left] in frozen or symbols[left + 1] in frozen:
                continue
            joined = symbols[left] + symbols[left + 1]
            if joined in scores:
                queue.append((-scores[joined], left, joined))
        heapify(queue)
        while queue:
            _, left, joined = heappop(queue)
            right = next_index[left] if parts[left] is not None else size
            if right >= size or parts[right] is None or parts[left] + parts[right] != joined:
                continue
            parts[left] = joined
            parts[right] = None
            following = next_index[right]
            next_index[left] = following
            if following < size:
                prev_index[following] = left
                pair = joined + parts[following]
                if pair in scores and parts[following] not in frozen:
                    heappush(queue, (-scores[pair], left, pair))
            before = prev_index[left]
            if before >= 0 and parts[before] not in frozen:
                pair = parts[before] + joined
                if pair in scores:
                    heappush(queue, (-scores[pair], before, pair))
        return [part for part in parts if part is not None]

    def _ids_of(self, symbols: list[str]) -> list[int]:
        """Step 4: pieces to ids; unknown symbols as bytes or one unknown id per run."""
        ids: list[int] = []
        for symbol in symbols:
            token = self._ids.get(symbol)
            if token is not None:
                ids.append(token)
            elif self.byte_fallback:
                ids += [self._byte_ids[byte] for byte in symbol.encode("utf-8")]
            elif not ids or ids[-1] != self._unknown:
                ids.append(self._unknown)  # type: ignore[arg-type]
        return ids

    # -- decoding ---------------------------------------------------------------------------

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, as ``sentencepiece``'s ``decode`` gives it. Its rule for the
        leading space: when the model adds a dummy prefix or removes extra whitespace, the
        first piece loses a leading ``▁``; with extra whitespace removed, so do the pieces
        after it while nothing has been written (pieces that decode to nothing)."""
        out: list[str] = []
        pending = bytearray()
        strip = self.add_dummy_prefix or self.remove_extra_whitespaces
        at_start = True  # still where sentencepiece strips a leading ▁

        def wrote(text: str) -> None:
            nonlocal at_start
            out.append(text)
            if text or not self.remove_extra_whitespaces:
                at_start = False

        for token in ids:
            if isinstance(token, bool) or not isinstance(token, int) or not (
                0 <= token < len(self.pieces)
            ):
                raise ValueError(f"cannot decode token id {token!r}: ids must be ints below "
                                 f"{len(self.pieces)}")
            piece, _, kind = self.pieces[token]
            if kind == BYTE:
                pending.append(_byte_of(piece))
                continue
            if pending:
                wrote(_decode_bytes(pending))
                pending.clear()
            if kind == CONTROL:
                continue
            surface = self.unk_surface if kind == UNKNOWN else piece
            if kind != UNKNOWN and at_start and strip:
                surface = surface.removeprefix(SPACE)
            wrote(surface.replace(SPACE, " "))
        if pending:
            out.append(_decode_bytes(pending))
        return "".join(out)


def _byte_of(piece: str) -> int:
    if len(piece) != 6 or not piece.startswith("<0x") or not piece.endswith(">"):
        raise ValueError(f"byte piece {piece!r} is not of the form <0xXX>")
    return int(piece[3:5], 16)


def _decode_bytes(data: bytes) -> str:
    """UTF-8, with one U+FFFD for each byte that is not part of a valid character."""
    out = []
    position = 0
    while position < len(data):
        try:
            chunk = data[position:].decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append(data[position : position + exc.start].decode("utf-8"))
            out.append("\ufffd")
            position += exc.start + 1
        else:
            out.append(chunk)
            break
    return "".join(out)
