"""Text cleaning before tokenization, with a report of what was removed and why.

Each document goes through, in order: Unicode normalisation (NFC by default, so "é" is
one code point however it was typed); line endings to "\n"; removal of control
characters (all of Unicode's Cc except tab and newline, the byte-order mark, and U+FFFD,
which stands for bytes that were not valid UTF-8); optional removal of non-ASCII
characters; whitespace tidying (odd Unicode spaces become " ", trailing spaces go, at
most one blank line in a row, no blank lines at either end). Then, across the corpus:
exact duplicate documents are dropped, then exact duplicate lines (only lines of at
least `dedup_lines_min_chars` characters: short lines such as "}" or a speaker's name
repeat naturally, long repeated lines are boilerplate such as licence headers), then the
optional length and letter-fraction filters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from gpt.validation import check_number

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffd]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING_SPACES = re.compile("[ \t]+$", re.MULTILINE)
_BLANK_RUNS = re.compile("\n{3,}")


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

    def to_dict(self) -> dict:
        return {"documents_in": self.documents_in, "chars_in": self.chars_in,
                "documents_out": self.documents_out, "chars_out": self.chars_out,
                "removed": dict(self.removed)}


def clean_documents(documents: list[str], options: CleaningOptions | None = None
                    ) -> tuple[list[str], CleaningReport]:
    """Clean a corpus; returns the surviving documents (in order) and the report."""
    options = options or CleaningOptions()
    report = CleaningReport(documents_in=len(documents), chars_in=sum(map(len, documents)))
    docs = [_clean_text(doc, options, report) for doc in documents]
    if options.dedup_documents:
        docs = _drop_duplicate_documents(docs, report)
    if options.dedup_lines_min_chars is not None:
        docs = _drop_duplicate_lines(docs, options.dedup_lines_min_chars, report)
    docs = _filter_documents(docs, options, report)
    report.documents_out, report.chars_out = len(docs), sum(map(len, docs))
    return docs, report


def _clean_text(text: str, options: CleaningOptions, report: CleaningReport) -> str:
    if options.normalization:
        normalized = unicodedata.normalize(options.normalization, text)
        report.count(f"documents changed by {options.normalization} normalisation",
                     int(normalized != text))
        text = normalized
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, n = _CONTROL.subn("", text)
    report.count("control characters (and undecodable bytes) removed", n)
    if options.ascii_only:
        text, n = _NON_ASCII.subn("", text)
        report.count("non-ASCII characters removed", n)
    return _tidy_whitespace(text, report)


def _tidy_whitespace(text: str, report: CleaningReport) -> str:
    text, n = _ODD_SPACES.subn(" ", text)
    report.count("unusual spaces replaced by ' '", n)
    before = len(text)
    text = _TRAILING_SPACES.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text).strip("\n")
    report.count("whitespace characters removed", before - len(text))
    return text


def _drop_duplicate_documents(docs: list[str], report: CleaningReport) -> list[str]:
    seen: set[str] = set()
    kept = []
    for doc in docs:
        if doc in seen:
            report.count("duplicate documents removed", 1)
        else:
            seen.add(doc)
            kept.append(doc)
    return kept


def _drop_duplicate_lines(docs: list[str], min_chars: int, report: CleaningReport) -> list[str]:
    """Drop every repeat of a line (of at least min_chars, ignoring surrounding spaces)
    after its first occurrence anywhere in the corpus."""
    seen: set[str] = set()
    out = []
    for doc in docs:
        kept = []
        for line in doc.split("\n"):
            key = line.strip()
            if len(key) >= min_chars:
                if key in seen:
                    report.count("duplicate lines removed", 1)
                    continue
                seen.add(key)
            kept.append(line)
        if len(kept) != doc.count("\n") + 1:
            doc = _tidy_whitespace("\n".join(kept), report)
        out.append(doc)
    return out


def _filter_documents(docs: list[str], options: CleaningOptions,
                      report: CleaningReport) -> list[str]:
    kept = []
    for doc in docs:
        if len(doc) < options.min_chars:
            report.count(f"documents shorter than {options.min_chars} characters removed", 1)
        elif options.max_chars is not None and len(doc) > options.max_chars:
            report.count(f"documents longer than {options.max_chars} characters removed", 1)
        elif sum(map(str.isalpha, doc)) < options.min_letter_fraction * len(doc):
            report.count(f"documents under {options.min_letter_fraction:.0%} letters removed",
                         1)
        else:
            kept.append(doc)
    return kept
