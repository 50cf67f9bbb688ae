"""Training: count the chunks of a corpus, then learn byte-pair merges from the counts.

Read :mod:`bpe.reference` first: it learns the same merges in a few lines, slowly. This
module is the fast version, in three steps.

**Options** (:class:`TrainingOptions`) are checked before any text is read.

**Counting chunks.** Training only needs each distinct chunk and how often it occurs, so the
corpus is read once, in pieces of about a million characters, each split by the pattern and
counted with a Counter. Pieces are counted in worker processes when there are several of
them. Each text (string or file) is split on its own; long ones are cut only where the
pattern's split cannot change (see :meth:`SplitPattern.cut`), so the counts equal those of
the uncut text. Occurrences of the special tokens are taken out of the text first: they
never take part in a merge (Hugging Face's trainer, unlike this one, would learn merges
from them).

**Learning merges.** Every distinct chunk becomes a *word*: a str with one character per
token id (``chr(id)``), so that finding and replacing a pair inside a word are single C-level
str operations. Between merges the trainer keeps

- ``pair_counts``: occurrences of each adjacent pair of ids, summed over the words weighted
  by their counts (overlapping occurrences such as the two in ``aaa`` both count, as in
  Hugging Face's trainer);
- ``pair_words``: for each pair, the words that may contain it (stale entries are skipped);
- a heap of ``(-count, pair)`` with lazy updates: an entry is pushed when a pair's count
  grows, and a popped entry whose count is out of date is pushed back with the current one.

A merge therefore costs time in proportion to the words that contain its pair, not to the
corpus. Counts are Python ints, which never overflow.

Ties: the most frequent pair wins; among equally frequent pairs, the one whose (left, right)
tokens come first in token order, where merged tokens follow all single bytes in order of
creation and single bytes are ordered by ``tie_break``:

- ``"huggingface"``: by their character in the GPT-2 byte alphabet, which is how Hugging
  Face's ``BpeTrainer`` numbers them; this mode reproduces its merges exactly.
- ``"byte-value"``: by byte value, i.e. the pair with the smallest ids of this package.

Every merge makes a new token: the occurrences of a token's bytes that are whole tokens
themselves always got the same merges, so no later pair can spell an existing token. Training
stops early when no pair is left or the best pair occurs fewer than ``min_frequency`` times.

:func:`learn_char_merges` runs the same loop over characters instead of bytes, for
SentencePiece models (:mod:`bpe.sentencepiece_training`).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from itertools import chain, islice
from typing import TextIO, TypeVar

from .encoding import encodable
from .files import BYTES_IN_CHAR_ORDER, Vocabulary
from .patterns import SplitPattern
from .progress import ProgressCallback, resolve_progress
from .special_tokens import SpecialTokens
from .workers import resolve_workers

TIE_BREAKS = {"huggingface": BYTES_IN_CHAR_ORDER, "byte-value": list(range(256))}

# Token ids live in str characters, so they must stay below the last code point.
MAX_TOKENS = 0x110000

# The corpus is split and counted in batches of about this many characters.
PIECE_CHARS = 1 << 20

Token = TypeVar("Token", bytes, str)  # what a token is made of: bytes, or characters


class TrainingOptions:
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
        self.tie_break = _checked_tie_break(tie_break)
        self.pattern = SplitPattern.resolve(pattern)

    def learn(
        self,
        texts: Iterable[str],
        progress: bool | ProgressCallback,
        num_workers: int | None,
    ) -> Vocabulary:
        """Count the chunks of ``texts``, learn the merges, number the special tokens."""
        report = resolve_progress(progress)
        counts = count_chunks(
            texts,
            self.pattern,
            special_tokens=self.specials,
            num_workers=num_workers,
            progress=report,
        )
        if not counts:
            besides = " but the special tokens" if self.special_tokens else ""
            raise ValueError(f"the training corpus is empty: there is no text{besides} to "
                             "learn from")
        learned = learn_merges(
            counts,
            num_tokens=self.vocab_size - len(self.special_tokens),
            min_frequency=self.min_frequency,
            tie_break=self.tie_break,
            progress=report,
        )
        ranks = {data: token for token, data in enumerate(learned.token_bytes)}
        specials = {token: len(ranks) + index for index, token in enumerate(self.special_tokens)}
        return Vocabulary(ranks, specials, learned.merges)



# -- counting chunks ----------------------------------------------------------------------


def count_chunks(
    texts: Iterable[str],
    pattern: SplitPattern,
    *,
    special_tokens: SpecialTokens | None = None,
    num_workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> Counter[str]:
    """How often each chunk occurs in ``texts`` (each text split on its own)."""
    workers = resolve_workers(num_workers)
    batches = _batches(texts, pattern, special_tokens or SpecialTokens({}))
    first = list(islice(batches, 2))
    batches = chain(first, batches)
    if workers > 1 and len(first) > 1:
        return _count_in_workers(batches, pattern, workers, progress)
    counts: Counter[str] = Counter()
    done = 0
    for batch in batches:
        counts.update(_count_batch(pattern, batch))
        done += sum(map(len, batch))
        if progress:
            progress("count", done, 0)
    return counts


def read_files(
    paths: Iterable[str | os.PathLike[str]],
    pattern: SplitPattern,
    special_tokens: SpecialTokens | None = None,
) -> Iterator[str]:
    """The UTF-8 texts of ``paths``, each file in pieces cut where the split cannot change
    (see :func:`read_stream`)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", newline="") as file:
                yield from read_stream(file, pattern, special_tokens)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{os.fspath(path)!r} is not UTF-8 text: {exc}") from exc


def read_stream(
    file: TextIO, pattern: SplitPattern, special_tokens: SpecialTokens | None = None
) -> Iterator[str]:
    """The text of an open text file (or stdin), in pieces of about ``PIECE_CHARS`` cut
    where the split cannot change, so memory stays that of a piece.

    Open it with ``newline=""``: line endings are kept as they are. No cut falls inside a
    special token. Patterns without safe cuts (custom ones) get the text whole.
    """
    specials = special_tokens or SpecialTokens({})
    if not pattern.can_cut:
        yield file.read()
        return
    # Enough characters before a block to judge a cut at its start, or a special token
    # that spans into it.
    context = 2 + max(map(len, specials.ids), default=0)
    pending: list[str] = []  # blocks read since the last cut, joined only at a cut
    while block := file.read(PIECE_CHARS):
        tail = _tail(pending, context)
        text = tail + block
        avoid = specials.within(text, frozenset(specials.ids))
        # No cut closer to the end than the longest special token, which could start
        # before the cut and end in the next block, where ``avoid`` cannot see it.
        room = max(map(len, specials.ids), default=1) - 1
        cut = pattern.last_cut(text[: len(text) - room], since=max(len(tail) - 1, 0),
                               avoid=avoid)
        if cut:
            pending.append(block[: cut - len(tail)])
            yield "".join(pending)
            pending = [block[cut - len(tail) :]]
        else:
            pending.append(block)
    if pending:
        yield "".join(pending)


def _tail(pieces: list[str], size: int) -> str:
    """The last ``size`` characters of the concatenated ``pieces``."""
    parts: list[str] = []
    for piece in reversed(pieces):
        parts.append(piece[-size:])
        size -= len(piece)
        if size <= 0:
            break
    return "".join(reversed(parts))


def _batches(
    texts: Iterable[str], pattern: SplitPattern, specials: SpecialTokens
) -> Iterator[list[str]]:
    """Split out special tokens, cut long texts, and group into lists of ~PIECE_CHARS."""
    batch: list[str] = []
    size = 0
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"training texts must be str, got {type(text).__name__}")
        for piece in chain.from_iterable(
            pattern.cut(part, PIECE_CHARS) for part in specials.split(text)
        ):
            batch.append(piece)
            size += len(piece)
            if size >= PIECE_CHARS:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def _count_batch(pattern: SplitPattern, batch: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in batch:
        counts.update(pattern.split(encodable(text)))
    return counts


def _count_in_workers(
    batches: Iterator[list[str]],
    pattern: SplitPattern,
    workers: int,
    progress: ProgressCallback | None,
) -> Counter[str]:
    counts: Counter[str] = Counter()
    done = 0
    pending: dict[Future[Counter[str]], int] = {}

    def collect(futures: Iterable[Future[Counter[str]]]) -> None:
        nonlocal done
        for future in futures:
            counts.update(future.result())
            done += pending.pop(future)
            if progress:
                progress("count", done, 0)

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for batch in batches:
            pending[pool.submit(_count_batch, pattern, batch)] = sum(map(len, batch))
            if len(pending) >= 2 * workers:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
        collect(list(pending))
    return counts


# -- learning merges ----------------------------------------------------------------------


@dataclass(frozen=True)
class LearnedMerges:
    """The tokens by id (byte ``b`` is token ``b``, merged tokens from 256) and the merges.

    ``merges[k] = (left, right)`` is the k-th pair merged; it made token ``256 + k``.
    """

    token_bytes: list[bytes]
    merges: list[tuple[int, int]]


def learn_merges(
    chunk_counts: Mapping[str, int],
    *,
    num_tokens: int,
    min_frequency: int = 1,
    tie_break: str = "huggingface",
    progress: ProgressCallback | None = None,
) -> LearnedMerges:
    """Merge pairs until there are ``num_tokens`` tokens (or no pair qualifies)."""
    byte_order = TIE_BREAKS[_checked_tie_break(tie_break)]
    if not 256 < num_tokens <= MAX_TOKENS:
        raise ValueError(f"num_tokens must be in 257..{MAX_TOKENS}, got {num_tokens}")
    words, counts = _words(chunk_counts, byte_order)
    token_bytes = [bytes([byte]) for byte in byte_order]
    merges = _merge_loop(words, counts, token_bytes, num_tokens, min_frequency, progress)

    def external(token: int) -> int:
        return byte_order[token] if token < 256 else token

    return LearnedMerges(
        token_bytes=[bytes([byte]) for byte in range(256)] + token_bytes[256:],
        merges=[(external(left), external(right)) for left, right in merges],
    )


def learn_char_merges(
    word_counts: Mapping[str, int],
    alphabet: Sequence[str],
    *,
    num_tokens: int,
    min_frequency: int = 1,
    max_length: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """The same merges over characters instead of bytes: the merged strings, in order.

    Every character of the words must be in ``alphabet``, whose order breaks ties as the byte
    order does in :func:`learn_merges`; ``num_tokens`` counts the alphabet and the merges.
    No merge makes a string longer than ``max_length`` characters.
    """
    if not len(alphabet) <= num_tokens <= MAX_TOKENS:
        raise ValueError(f"num_tokens must be in {len(alphabet)}..{MAX_TOKENS} (the alphabet "
                         f"and the merges), got {num_tokens}")
    to_internal = {ord(char): index for index, char in enumerate(alphabet)}
    words, counts = [], []
    for word, count in word_counts.items():
        if len(word) > 1:
            words.append(word.translate(to_internal))
            counts.append(count)
    tokens = list(alphabet)
    _merge_loop(words, counts, tokens, num_tokens, min_frequency, progress, max_length)
    return tokens[len(alphabet) :]


def _checked_tie_break(tie_break: str) -> str:
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {sorted(TIE_BREAKS)}, got {tie_break!r}")
    return tie_break


def _words(chunk_counts: Mapping[str, int], byte_order: list[int]) -> tuple[list[str], list[int]]:
    """Each chunk of two or more bytes as a word of internal byte ids, with its count."""
    to_internal = bytes.maketrans(bytes(byte_order), bytes(range(256)))
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        data = chunk.encode("utf-8")
        if len(data) > 1:
            words.append(data.translate(to_internal).decode("latin-1"))
            counts.append(count)
    return words, counts


def _merge_loop(
    words: list[str],
    counts: list[int],
    tokens: list[Token],
    num_tokens: int,
    min_frequency: int,
    progress: ProgressCallback | None,
    max_length: int | None = None,
) -> list[tuple[int, int]]:
    """Run the merges, extending ``tokens`` (bytes, or characters for :func:`learn_char_merges`)
    with the merged ones, none longer than ``max_length``; returns the merged pairs (internal
    ids)."""
    stride = num_tokens
    heap_stride = stride * stride
    pair_counts, pair_words = _count_pairs(words, counts, stride)
    heap = [-count * heap_stride + pair for pair, count in pair_counts.items()]
    heapify(heap)
    merges: list[tuple[int, int]] = []
    planned = num_tokens - len(tokens)
    report_every = max(1, planned // 100)
    while len(tokens) < num_tokens and heap:
        negative_count, pair = divmod(heappop(heap), heap_stride)
        count = pair_counts[pair]
        if count != -negative_count:
            if count > 0:
                heappush(heap, -count * heap_stride + pair)
            continue
        if count < min_frequency:
            break
        left, right = divmod(pair, stride)
        if max_length is not None and len(tokens[left]) + len(tokens[right]) > max_length:
            continue  # never merged; pushed again only when a merge forms more of it
        new_token = len(tokens)
        tokens.append(tokens[left] + tokens[right])
        merges.append((left, right))
        formed = _merge_pair(words, counts, pair_counts, pair_words, left, right, new_token, stride)
        for formed_pair, increment in formed.items():
            total = pair_counts[formed_pair] + increment
            pair_counts[formed_pair] = total
            heappush(heap, -total * heap_stride + formed_pair)
        if progress and len(merges) % report_every == 0:
            progress("merge", len(merges), planned)
    if progress:
        progress("merge", len(merges), len(merges))
    return merges


def _pairs(word: str, stride: int) -> list[int]:
    return [ord(left) * stride + ord(right) for left, right in zip(word, word[1:])]


def _count_pairs(
    words: list[str], counts: list[int], stride: int
) -> tuple[defaultdict[int, int], defaultdict[int, list[int]]]:
    pair_counts: defaultdict[int, int] = defaultdict(int)
    pair_words: defaultdict[int, list[int]] = defaultdict(list)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in _pairs(word, stride):
            pair_counts[pair] += count
            pair_words[pair].append(index)
    return pair_counts, pair_words


def _merge_pair(
    words: list[str],
    counts: list[int],
    pair_counts: defaultdict[int, int],
    pair_words: defaultdict[int, list[int]],
    left: int,
    right: int,
    new_token: int,
    stride: int,
) -> defaultdict[int, int]:
    """Replace the pair in every word holding it and lower the counts of the pairs it broke.

    Returns the increments of the pairs it formed, for the caller to add and push.
    """
    pair = left * stride + right
    target = chr(left) + chr(right)
    replacement = chr(new_token)
    right_row = right * stride
    new_row = new_token * stride
    formed: defaultdict[int, int] = defaultdict(int)
    # A word is listed once per occurrence of the pair; one visit merges them all (a
    # second would find none), so visit each word once: one long repeated chunk ("aaaa...")
    # would otherwise cost its length squared.
    for index in dict.fromkeys(pair_words.pop(pair, ())):
        word = words[index]
        at = word.find(target)
        if at < 0:
            continue
        count = counts[index]
        if word.find(target, at + 2) < 0:
            # The usual case, one occurrence: only the pairs with its neighbours change.
            if at:
                before_row = ord(word[at - 1]) * stride
                pair_counts[before_row + left] -= count
                formed[before_row + new_token] += count
                pair_words[before_row + new_token].append(index)
            if at + 2 < len(word):
                after = ord(word[at + 2])
                pair_counts[right_row + after] -= count
                formed[new_row + after] += count
                pair_words[new_row + after].append(index)
            words[index] = word[:at] + replacement + word[at + 2 :]
        else:
            # str.replace merges left to right without overlaps, exactly like BPE.
            merged_word = word.replace(target, replacement)
            for old_pair in _pairs(word, stride):
                pair_counts[old_pair] -= count
            for new_pair in _pairs(merged_word, stride):
                formed[new_pair] += count
                pair_words[new_pair].append(index)
            words[index] = merged_word
    del pair_counts[pair]
    return formed
