"""Training SentencePiece BPE models with our own merge loop; ``sentencepiece`` loads them.

A model is learned as sentencepiece's BPE trainer learns one, in its ``identity``
normalization:

1. Every line of the text (``str.splitlines``) is one sentence, normalized as
   :func:`bpe.sentencepiece.normalize` does it when encoding (spaces squeezed, the dummy
   prefix, each space written as ``▁``).
2. Sentences split into words, each ``▁`` starting a new one, counted like the chunks of
   byte-level training (:func:`bpe.training.count_chunks`). Merges never cross a word.
3. The alphabet: the most frequent characters until they cover ``character_coverage`` of all
   character occurrences (sentencepiece's rule), most frequent first. Other characters are
   not pieces (the unknown piece, or their bytes with ``byte_fallback``); words are cut
   around them.
4. Pairs of characters are merged, most frequent pair first, by
   :func:`bpe.training.learn_char_merges` (ties: the pair of earlier tokens, where the
   alphabet comes in order of frequency and merged tokens after it), except pairs that would
   make a piece longer than ``max_piece_length`` characters (sentencepiece's
   ``max_sentencepiece_length``, 16 by default).

The pieces come in sentencepiece's order: ``<unk>``, ``<s>``, ``</s>`` (ids 0, 1, 2), the
256 byte pieces ``<0x00>``..``<0xFF>`` with ``byte_fallback``, the merged pieces in the order
they were learned, then the alphabet. Special and byte pieces score 0, the others minus their
rank (0, -1, -2, ...), so an earlier merge has a higher score, which is what orders the
merges when encoding. A merge that spells a special or byte piece (from a text holding
``<s>``) is left out: sentencepiece would encode such a piece as the special id.

What differs from sentencepiece's trainer: ties between equally frequent pairs (it takes the
shorter, then the alphabetically first piece); none of its other limits on pieces (split by
Unicode script and by digits), user-defined pieces or NFKC normalization; and when the pairs
run out the model is smaller than ``vocab_size`` (sentencepiece refuses to train it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from .patterns import SplitPattern
from .progress import ProgressCallback, resolve_progress
from .sentencepiece import (
    BYTE,
    CONTROL,
    NORMAL,
    SPACE,
    UNKNOWN,
    SentencePieceTokenizer,
    normalize,
)
from .training import count_chunks, learn_char_merges, read_files

# A word: a ▁ and what follows it up to the next ▁, or the text before the first ▁.
WORDS = SplitPattern(f"{SPACE}[^{SPACE}]*|[^{SPACE}]+")

SPECIAL_PIECES = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
BYTE_PIECES = [f"<0x{byte:02X}>" for byte in range(256)]


def train_sentencepiece(
    texts: Iterable[str],
    *,
    vocab_size: int,
    byte_fallback: bool = True,
    character_coverage: float = 1.0,
    add_dummy_prefix: bool = True,
    remove_extra_whitespaces: bool = True,
    min_frequency: int = 1,
    max_piece_length: int = 16,
    progress: bool | ProgressCallback = False,
    num_workers: int | None = None,
) -> SentencePieceTokenizer:
    """Learn a SentencePiece BPE model of ``vocab_size`` pieces (fewer if the pairs run out)."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
    if not 0 < character_coverage <= 1:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage}")
    for name, value in [("min_frequency", min_frequency), ("max_piece_length", max_piece_length)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    report = resolve_progress(progress)
    sentences = _sentences(texts, add_dummy_prefix, remove_extra_whitespaces)
    word_counts = count_chunks(sentences, WORDS, num_workers=num_workers, progress=report)
    if not word_counts:
        raise ValueError("the training corpus is empty: there is no text to learn from")
    alphabet = _alphabet(word_counts, character_coverage)
    reserved = SPECIAL_PIECES + [(piece, BYTE) for piece in BYTE_PIECES if byte_fallback]
    if vocab_size < len(reserved) + len(alphabet):
        raise ValueError(
            f"vocab_size {vocab_size} is too small for the {len(reserved)} special and byte "
            f"pieces and the {len(alphabet)} characters of the text; raise vocab_size or "
            "lower character_coverage"
        )
    merged = learn_char_merges(
        _cut_at_unknown(word_counts, set(alphabet)), alphabet,
        num_tokens=vocab_size - len(reserved), min_frequency=min_frequency,
        max_length=max_piece_length, progress=report,
    )
    reserved_names = {piece for piece, _ in reserved}
    learned = [piece for piece in merged if piece not in reserved_names] + alphabet
    pieces = [(piece, 0.0, kind) for piece, kind in reserved]
    pieces += [(piece, -float(rank), NORMAL) for rank, piece in enumerate(learned)]
    return SentencePieceTokenizer(pieces, byte_fallback=byte_fallback,
                                  add_dummy_prefix=add_dummy_prefix,
                                  remove_extra_whitespaces=remove_extra_whitespaces)


def train_sentencepiece_from_files(
    paths: Iterable[str | os.PathLike[str]], **options: Any
) -> SentencePieceTokenizer:
    """:func:`train_sentencepiece` on UTF-8 text files, with the same options."""
    return train_sentencepiece(read_files(paths, WORDS), **options)


def _sentences(
    texts: Iterable[str], add_dummy_prefix: bool, remove_extra_whitespaces: bool
) -> Iterator[str]:
    """The normalized lines of ``texts`` that are not empty."""
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"training texts must be str, got {type(text).__name__}")
        for line in text.splitlines():
            sentence = normalize(line, add_dummy_prefix=add_dummy_prefix,
                                 remove_extra_whitespaces=remove_extra_whitespaces)
            if sentence:
                yield sentence


def _alphabet(word_counts: Counter[str], character_coverage: float) -> list[str]:
    """The most frequent characters (ties: by code point) until they reach the coverage."""
    char_counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for char, times in Counter(word).items():
            char_counts[char] += times * count
    total = sum(char_counts.values())
    alphabet: list[str] = []
    covered = 0
    for char, count in sorted(char_counts.items(), key=lambda item: (-item[1], item[0])):
        if covered / total >= character_coverage:
            break
        alphabet.append(char)
        covered += count
    return alphabet


def _cut_at_unknown(word_counts: Counter[str], alphabet: set[str]) -> Counter[str]:
    """The words cut around the characters outside ``alphabet``, which are left out."""
    parts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for part in _known_runs(word, alphabet):
            parts[part] += count
    return parts


def _known_runs(word: str, alphabet: set[str]) -> Iterator[str]:
    start = 0
    for index, char in enumerate(word):
        if char not in alphabet:
            if index > start:
                yield word[start:index]
            start = index + 1
    if start < len(word):
        yield word[start:]
