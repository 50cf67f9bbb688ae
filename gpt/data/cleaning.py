"""Text cleaning before tokenization, with a report of what was removed and why.

Each document goes through, in order: line endings ("\r\n" and a lone "\r") to "\n";
removal of control characters (all of Unicode's Cc except tab and newline, the byte-order
mark, and U+FFFD, which stands for bytes that were not valid UTF-8); Unicode
normalisation (NFC by default, so "é" is one code point however it was typed); odd
Unicode spaces to " "; optional removal of non-ASCII characters; whitespace tidying
(trailing spaces go, at most one blank line in a row, no blank lines at either end).
Then, across the corpus: exact duplicate documents are dropped, then exact duplicate
lines (only lines of at least `dedup_lines_min_chars` characters: short lines such as "}"
or a speaker's name repeat naturally, long repeated lines are boilerplate such as licence
headers), then the optional length and letter-fraction filters.

The corpus streams through in pieces of about ``PIECE_CHARS`` characters, each ending
after a line end, so memory stays that of a few pieces (or of the longest line) however
large a document is. Every step above up to the blank-line rule only looks inside a line,
so :func:`clean_piece` (which worker processes run) does it for a piece alone;
:class:`CorpusCleaner` then, in order, joins the pieces' blank lines across their edges,
drops duplicate lines (by a 64-bit hash of each line: a corpus of a billion distinct long
lines has a chance of about one in 40 that one line is taken for another) and decides
each document's fate at its end (duplicate, too short or long, too few letters), when its
text has already been written out: the caller then takes it back. The result is exactly
that of cleaning each document whole, which :func:`clean_documents` does for documents in memory.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from gpt.data.seen_hashes import SeenHashes
from gpt.validation import check_number

# Lone surrogates (a str can hold them, UTF-8 cannot) count as undecodable, like U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffd\ud800-\udfff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING_SPACES = re.compile("[ \t]+$", re.MULTILINE)
_BLANK_RUNS = re.compile("\n{3,}")
_LINE_END = re.compile("\r\n?|\n")
PIECE_CHARS = 1 << 22

CONTROL = "control characters (and undecodable bytes) removed"
WHITESPACE = "whitespace characters removed"
DUPLICATE_LINES = "duplicate lines removed"


@dataclass
class CleaningOptions:
    normalization: str | None = "NFC"  # "NFC", "NFKC", "NFD", "NFKD" or None
    ascii_only: bool = False
    dedup_documents: bool = True
    dedup_lines_min_chars: int | None = 40  # None: keep duplicate lines
    min_chars: int = 1  # documents shorter than this after cleaning are dropped
    max_chars: int | None = None
    min_letter_fraction: float = 0.0  # drop documents with fewer letters (tables, dumps)

    def __post_init__(self):
        if self.normalization not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"cleaning: normalization must be NFC, NFKC, NFD, NFKD or None, "
                             f"got {self.normalization!r}")
        check_number("--min-letter-fraction", self.min_letter_fraction, minimum=0, maximum=1,
                     where="cleaning")
        for name in ("dedup_lines_min_chars", "min_chars", "max_chars"):
            check_number("--" + name.replace("_", "-"), getattr(self, name), minimum=0,
                         where="cleaning")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"cleaning: max_chars {self.max_chars} is below min_chars "
                             f"{self.min_chars}")


@dataclass
class CleaningReport:
    """Counts in and out, and what each step removed (the unit is in the reason)."""

    documents_in: int = 0
    chars_in: int = 0
    documents_out: int = 0
    chars_out: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str, n: int) -> None:
        if n:
            self.removed[reason] = self.removed.get(reason, 0) + n

    def format(self) -> str:
        lines = [f"cleaning: {self.documents_in:,} documents, {self.chars_in:,} characters in"
                 f" -> {self.documents_out:,} documents, {self.chars_out:,} characters out"]
        width = max((len(reason) for reason in self.removed), default=0)
        lines += [f"  {reason:<{width}}  {n:>10,}" for reason, n in self.removed.items()]
        if not self.removed:
            lines.append("  nothing removed")
        return "\n".join(lines)

    def add(self, other: CleaningReport) -> None:
        """Add the removal counts of ``other`` (a piece's, or a document's)."""
        for reason, n in other.removed.items():
            self.count(reason, n)

    def to_dict(self) -> dict:
        return {"documents_in": self.documents_in, "chars_in": self.chars_in,
                "documents_out": self.documents_out, "chars_out": self.chars_out,
                "removed": dict(self.removed)}


def clean_documents(documents: Iterable[str], options: CleaningOptions | None = None,
                    piece_chars: int = PIECE_CHARS) -> tuple[list[str], CleaningReport]:
    """Clean a corpus in memory, in pieces of ``piece_chars`` (the result does not depend
    on it); returns the surviving documents (in order) and the report."""
    options = options or CleaningOptions()
    cleaner = CorpusCleaner(options)
    kept = []
    for text in documents:
        document = cleaner.document()
        parts = [document.add(clean_piece(piece, options))
                 for piece in pieces_of(text, piece_chars)]
        if document.finish():
            kept.append("".join(parts))
    return kept, cleaner.report


def pieces_of(text: str, size: int = PIECE_CHARS) -> Iterator[str]:
    """``text`` in pieces of at least ``size`` characters (the last may be shorter), each
    but the last ending just after a line end ("\n", "\r\n" or "\r"); an empty text is
    one empty piece."""
    start = 0
    while len(text) - start > size:
        end = _LINE_END.search(text, start + size - 1)
        if not end:
            break
        yield text[start:end.end()]
        start = end.end()
    yield text[start:]


# -- one piece (any process) ---------------------------------------------------------------
@dataclass
class CleanPiece:
    """A piece cleaned inside its lines, blank-line runs inside it cut to one, and its
    newlines at both ends taken off (``leading``, ``trailing``: how many), since the
    blank lines across a piece's edges are the next step's to join."""

    chars_in: int
    text: str
    leading: int
    trailing: int
    normalized: bool  # normalisation changed something
    report: CleaningReport  # removals inside the piece
    candidates: np.ndarray  # int64: the lines (of text.split("\n")) long enough to dedup
    hashes: np.ndarray  # uint64: a hash of each candidate, stripped of surrounding spaces


def clean_piece(piece: str, options: CleaningOptions) -> CleanPiece:
    report = CleaningReport()
    report.count(WHITESPACE, piece.count("\r\n"))  # the "\r" of each "\r\n"
    text = piece.replace("\r\n", "\n").replace("\r", "\n")
    text, n = _CONTROL.subn("", text)
    report.count(CONTROL, n)
    normalized = False
    if options.normalization:  # after the controls go, so none splits what it composes
        normal = unicodedata.normalize(options.normalization, text)
        text, normalized = normal, normal != text
    text, n = _ODD_SPACES.subn(" ", text)
    report.count("unusual spaces replaced by ' '", n)
    if options.ascii_only:  # after the spaces, so a no-break space still parts two words
        text, n = _NON_ASCII.subn("", text)
        report.count("non-ASCII characters removed", n)
    before = len(text)
    text = _BLANK_RUNS.sub("\n\n", _TRAILING_SPACES.sub("", text))
    report.count(WHITESPACE, before - len(text))
    body = text.strip("\n")
    leading = len(text) - len(text.lstrip("\n"))
    trailing = len(text) - leading - len(body) if body else 0
    candidates, hashes = _dedup_candidates(body, options.dedup_lines_min_chars)
    return CleanPiece(len(piece), body, leading, trailing, normalized, report, candidates,
                      hashes)


def _dedup_candidates(body: str, min_chars: int | None) -> tuple[np.ndarray, np.ndarray]:
    lines, digests = [], []
    if min_chars is not None and body:
        for index, line in enumerate(body.split("\n")):
            if len(line) >= min_chars and len(key := line.strip()) >= min_chars:
                lines.append(index)
                digests.append(line_hash(key))
    return np.array(lines, dtype=np.int64), np.frombuffer(b"".join(digests), dtype=np.uint64)


def line_hash(key: str) -> bytes:
    """8 bytes of BLAKE2b: the same in every process (unlike ``hash``)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


_EMPTY_LINE = np.frombuffer(line_hash(""), dtype=np.uint64)


# -- the corpus, in order (one process) ----------------------------------------------------
class CorpusCleaner:
    """What must see the whole corpus in order: lines and documents seen so far, the
    report. Feed each document's cleaned pieces to :meth:`document`."""

    def __init__(self, options: CleaningOptions) -> None:
        self.options = options
        self.report = CleaningReport()
        self.seen_lines = SeenHashes()
        self.seen_documents: set[bytes] = set()

    def document(self) -> DocumentCleaner:
        self.report.documents_in += 1
        return DocumentCleaner(self)


class DocumentCleaner:
    """One document: :meth:`add` turns each cleaned piece into the text to write out;
    :meth:`finish` says whether the document stays (if not, take back what was written)."""

    def __init__(self, corpus: CorpusCleaner) -> None:
        self.corpus, self.options = corpus, corpus.options
        self.normalized = False
        self.pending = 0  # newlines after the text so far, not yet placed
        self.started = False  # any text yet (newlines before it are dropped)
        self.digest = hashlib.blake2b(digest_size=16)  # of the text before line dedup
        self.any_line = False  # a line written out yet (the next one needs a "\n")
        self.tidy = _BlankLines()  # blank lines again, where dropped lines leave gaps
        self.report = CleaningReport()  # what dedup and the tidy after it removed
        self.chars = self.letters = 0

    def add(self, piece: CleanPiece) -> str:
        report = self.corpus.report
        report.chars_in += piece.chars_in
        report.add(piece.report)
        self.normalized |= piece.normalized
        if not piece.text:
            self.pending += piece.leading
            return ""
        newlines = self.pending + piece.leading
        joint = ("\n" if newlines == 1 else "\n\n") if self.started else ""
        report.count(WHITESPACE, newlines - len(joint))
        self.started, self.pending = True, piece.trailing
        self.digest.update((joint + piece.text).encode("utf-8"))
        out = [] if joint != "\n\n" or self._duplicate_empty_line() else [""]
        out.append(self._lines_kept(piece))
        return self._write([segment for segment in out if segment is not None])

    def finish(self) -> bool:
        corpus, options = self.corpus, self.options
        corpus.report.count(WHITESPACE, self.pending)
        if self.normalized:
            corpus.report.count(f"documents changed by {options.normalization} normalisation", 1)
        if not self.started and options.dedup_lines_min_chars == 0:
            self._duplicate_empty_line()  # an empty document is one empty line
        self.tidy.finish(self.report)
        if options.dedup_documents:
            key = self.digest.digest()
            if key in corpus.seen_documents:
                corpus.report.count("duplicate documents removed", 1)
                return False
            corpus.seen_documents.add(key)
        corpus.report.add(self.report)
        reason = self._filtered_out()
        if reason:
            corpus.report.count(reason, 1)
            return False
        corpus.report.documents_out += 1
        corpus.report.chars_out += self.chars
        return True

    def _duplicate_empty_line(self) -> bool:
        """With dedup_lines_min_chars 0 an empty line is a line like any other."""
        if self.options.dedup_lines_min_chars != 0:
            return False
        return self._dropped(_EMPTY_LINE)[0]

    def _dropped(self, hashes: np.ndarray) -> np.ndarray:
        """Which lines (by hash, in order) repeat an earlier one; records the others."""
        seen = self.corpus.seen_lines
        dropped = seen.contains(hashes)
        _, first = np.unique(hashes, return_index=True)
        repeated = np.ones(len(hashes), dtype=bool)
        repeated[first] = False
        dropped |= repeated
        seen.add(hashes[~dropped])
        self.report.count(DUPLICATE_LINES, int(dropped.sum()))
        return dropped

    def _lines_kept(self, piece: CleanPiece) -> str | None:
        """The piece's lines without the duplicates, joined; None if none is left."""
        if not len(piece.candidates):
            return piece.text
        dropped = piece.candidates[self._dropped(piece.hashes)]
        if not len(dropped):
            return piece.text
        lines = piece.text.split("\n")
        for index in dropped[::-1]:
            del lines[index]
        return "\n".join(lines) if lines else None

    def _write(self, segments: list[str]) -> str:
        """Lines joined by newlines across pieces, then tidied."""
        text = "\n".join(segments)
        if segments and self.any_line:
            text = "\n" + text
        self.any_line |= bool(segments)
        text = self.tidy.add(text, self.report)
        self.chars += len(text)
        if self.options.min_letter_fraction:
            self.letters += sum(map(str.isalpha, text))
        return text

    def _filtered_out(self) -> str | None:
        options = self.options
        if self.chars < options.min_chars:
            return f"documents shorter than {options.min_chars} characters removed"
        if options.max_chars is not None and self.chars > options.max_chars:
            return f"documents longer than {options.max_chars} characters removed"
        if self.letters < options.min_letter_fraction * self.chars:
            return f"documents under {options.min_letter_fraction:.0%} letters removed"
        return None


class _BlankLines:
    """At most one blank line in a row and none at either end, over a stream of text:
    trailing newlines wait for the next text (or the end, where they go)."""

    def __init__(self) -> None:
        self.held = 0
        self.started = False

    def add(self, text: str, report: CleaningReport) -> str:
        if not text:
            return ""
        before = self.held + len(text)
        text = "\n" * self.held + text
        if not self.started:
            text = text.lstrip("\n")
        text = _BLANK_RUNS.sub("\n\n", text)
        body = text.rstrip("\n")
        self.held = len(text) - len(body)
        self.started |= bool(body)
        report.count(WHITESPACE, before - len(body) - self.held)
        return body

    def finish(self, report: CleaningReport) -> None:
        report.count(WHITESPACE, self.held)
        self.held = 0
