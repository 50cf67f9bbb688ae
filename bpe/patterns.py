"""Pre-tokenization: the regex that splits text into chunks before any byte-pair merging.

Merges never cross a chunk boundary, so the split pattern decides which byte sequences can
ever become one token. Three published patterns are available by name (``gpt2``,
``cl100k``, ``o200k``); any other string is compiled as a custom pattern.

A custom pattern must match every character of the text (findall semantics: text between
matches would otherwise be lost silently, as it is in tiktoken) and must not contain
capturing groups; both are reported as errors.
"""

from __future__ import annotations

from collections.abc import Callable

import regex

# GPT-2's pattern as released with the model (encoder.py); Hugging Face's ByteLevel
# pre-tokenizer uses the same one.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# cl100k_base and o200k_base as published in tiktoken (tiktoken_ext/openai_public.py).
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

NAMED_PATTERNS = {"gpt2": GPT2_PATTERN, "cl100k": CL100K_PATTERN, "o200k": O200K_PATTERN}

# Oniguruma (Hugging Face's regex engine) reads ``{1,3}+`` as "one or more runs of 1-3", not
# as a possessive {1,3}. Without the ``+`` the pattern means the same: nothing follows that
# alternative, so it never backtracks into it.
_ONIGURUMA_PATTERNS = {"cl100k": CL100K_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}{1,3}")}

# For every named pattern, a newline between two non-space characters is a chunk of its own
# (or ends one), and the chunks on either side of it do not depend on the text beyond it.
# Text cut right after such a newline therefore splits exactly like the uncut text.
_SAFE_CUT = regex.compile(r"(?<=\S\n)(?=\S)")


class SplitPattern:
    """A compiled split pattern, with its name when it is one of the published ones."""

    __slots__ = ("name", "source", "_compiled")

    def __init__(self, source: str, name: str | None = None) -> None:
        self.name = name
        self.source = source
        try:
            self._compiled = regex.compile(source)
        except (regex.error, TypeError) as exc:
            raise ValueError(f"pattern {source!r} does not compile: {exc}") from exc
        if self._compiled.groups:
            raise ValueError(
                f"pattern {source!r} has capturing groups; use non-capturing (?:...) groups"
            )

    @classmethod
    def resolve(cls, pattern: str | SplitPattern) -> SplitPattern:
        """Return ``pattern`` itself, the named pattern it names, or it compiled as a regex."""
        if isinstance(pattern, SplitPattern):
            return pattern
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str or SplitPattern, got {type(pattern).__name__}")
        if pattern in NAMED_PATTERNS:
            return cls(NAMED_PATTERNS[pattern], name=pattern)
        return cls(pattern)

    @property
    def can_cut(self) -> bool:
        """Whether long texts can be cut into independently split pieces (named patterns)."""
        return self.name is not None

    @property
    def oniguruma_source(self) -> str:
        """The pattern as Oniguruma (used by Hugging Face tokenizers) should be given it."""
        return _ONIGURUMA_PATTERNS.get(self.name or "", self.source)

    def split(self, text: str) -> list[str]:
        """The chunks of ``text``, in order; their concatenation is ``text``."""
        chunks = self._compiled.findall(text)
        if self.name is None and sum(map(len, chunks)) != len(text):
            self._report_gap(text)
        return chunks

    def cut(
        self, text: str, piece_chars: int, avoid: Callable[[int], bool] | None = None
    ) -> list[str]:
        """Cut ``text`` into pieces of about ``piece_chars`` that split exactly like the whole.

        Cuts go only after a newline between two non-space characters (never at a position
        where ``avoid`` is true), and only for the named patterns; other texts stay whole.
        """
        if not self.can_cut or len(text) <= piece_chars:
            return [text]
        pieces = []
        start = 0
        search_from = piece_chars
        while len(text) - start > piece_chars:
            match = _SAFE_CUT.search(text, search_from)
            if match is None:
                break
            position = match.start()
            search_from = position + 1
            if avoid is None or not avoid(position):
                pieces.append(text[start:position])
                start = position
                search_from = start + piece_chars
        pieces.append(text[start:])
        return pieces

    def last_cut(
        self, text: str, since: int = 0, avoid: Callable[[int], bool] | None = None
    ) -> int:
        """The last position after ``since`` where :meth:`cut` could cut, or 0 if none."""
        if not self.can_cut:
            return 0
        position = text.rfind("\n", since, len(text) - 1)
        while position > 0:
            cut = position + 1
            if _SAFE_CUT.match(text, cut) and (avoid is None or not avoid(cut)):
                return cut
            position = text.rfind("\n", since, position)
        return 0

    def _report_gap(self, text: str) -> None:
        position = 0
        for match in self._compiled.finditer(text):
            if match.start() != position:
                break
            position = match.end()
        raise ValueError(
            f"pattern {self.source!r} does not match the text at position {position} "
            f"({text[position : position + 20]!r}); a split pattern must match every character "
            "(add a catch-all alternative such as |\\s+|.)"
        )

    def __reduce__(self) -> tuple[type[SplitPattern], tuple[str, str | None]]:
        return (SplitPattern, (self.source, self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SplitPattern) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"SplitPattern({self.name or self.source!r})"
