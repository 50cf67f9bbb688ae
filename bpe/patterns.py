"""Pre-tokenization: the regex that splits text into chunks before any byte-pair merging.

Merges never cross a chunk boundary, so the split pattern decides which byte sequences can
ever become one token. Three published patterns are available by name (``gpt2``,
``cl100k``, ``o200k``); any other string is compiled as a custom pattern.

A custom pattern must match every character of the text (findall semantics: text between
matches would otherwise be lost silently, as it is in tiktoken) and must not contain
capturing groups; both are reported as errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

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

# Constructs of custom patterns that Oniguruma (Hugging Face's engine, Ruby syntax) reads
# differently from the ``regex`` module, found by comparing the two on generated text.
_ONIGURUMA_ESCAPES = {
    "w": "its word characters take ², regex's do not",
    "W": "its word characters take ², regex's do not",
    "b": "its word characters take ², regex's do not",
    "B": "its word characters take ², regex's do not",
    "h": "a hex digit there, horizontal space in regex",
    "H": "no hex digit there, no horizontal space in regex",
    "K": "its matches after \\K differ",
    "N": "any character but a newline there, a named character in regex",
}
_ONIGURUMA_OTHER = [
    (r"[$^]", "an anchor at every line's end or start there, at the text's in regex; "
              "write \\A, \\z or (?=\\n)"),
    (r"\{(?:\d+(?:,\d*)?|,\d+)\}\+", "a repeated interval there, (x{n,m})+, a possessive "
                                     "one in regex"),
    (r"\(\?[imx-]*m", "dot matching newlines there, multi-line anchors in regex"),
]
_ONIGURUMA_IN_CLASS = [
    (r"&&", "a class intersection there, two ampersands in regex"),
    (r"\[(?!:)", "a nested class there, a '[' in regex"),
]


def _check_oniguruma(source: str) -> None:
    """Raise ValueError naming the first construct of ``source`` whose meaning differs
    between Oniguruma and regex (escapes skipped, character classes read as classes)."""
    position, in_class, space_run_end = 0, False, -1
    while position < len(source):
        char = source[position]
        if char == "\\":
            escape = source[position + 1 : position + 2]
            if escape in _ONIGURUMA_ESCAPES:
                _refuse(source, "\\" + escape, _ONIGURUMA_ESCAPES[escape])
            position += 2
            if not in_class and escape == "s" and source.startswith("++", position):
                position = space_run_end = position + 2
            continue
        if char == "$" and position == space_run_end:
            # cl100k's \s++$: no newline can follow the run, so both engines read it as \z
            position += 1
            continue
        for construct, meaning in _ONIGURUMA_IN_CLASS if in_class else _ONIGURUMA_OTHER:
            found = regex.match(construct, source[position:])
            if found:
                _refuse(source, found.group(), meaning)
        end = source.find(":]", position) if in_class and char == "[" else -1
        if end >= 0:  # a POSIX class, [:alpha:]
            position = end + 2
            continue
        if not in_class and char == "[":
            in_class = True
            position += 2 if source.startswith("[^", position) else 1
            position += source.startswith("]", position)  # a leading ] is literal
            continue
        in_class = in_class and char != "]"
        position += 1


def _refuse(source: str, construct: str, meaning: str) -> None:
    raise ValueError(f"split regex {source!r}: Oniguruma, Hugging Face's regex engine, reads "
                     f"{construct!r} otherwise ({meaning}); this package would split text "
                     "differently from it")


# Oniguruma reads ``x{n,m}+`` as ``(?:x{n,m})+``, an interval repeated, where regex reads a
# possessive interval. After one atom (a character, an escape, a class) Oniguruma's reading
# is written out for regex; after a group it is refused (``_ONIGURUMA_OTHER``). The scan
# takes one atom or character at a time, so it never starts inside an escape or a class.
_ATOM_INTERVAL_PLUS = regex.compile(
    r"(\\[pP]\{[^}]*\}|\\.|\[\^?\]?(?:\\.|\[:\w+:\]|[^\]\\])*\]|[^\\\[\](){}|*+?])"
    r"(?:(\{(?:\d+(?:,\d*)?|,\d+)\})\+)?|[\s\S]"
)


def _repeated_intervals(source: str) -> str:
    """``source`` with each ``atom{n,m}+`` written as Oniguruma reads it, ``(?:atom{n,m})+``."""
    return _ATOM_INTERVAL_PLUS.sub(
        lambda m: f"(?:{m.group(1)}{m.group(2)})+" if m.group(2) else m.group(), source)


_GAP_KEEPING = "(?:{0})|(?:(?!(?:{0}))[\\s\\S])+"


def _gap_keeping(source: str) -> str:
    """``source``, with each run of text it does not match as a chunk of its own."""
    return _GAP_KEEPING.format(source)


def _inner_of_gap_keeping(source: str) -> str | None:
    """The pattern that :func:`_gap_keeping` made ``source`` from, or None."""
    size, rest = divmod(len(source) - len(_GAP_KEEPING) + 6, 2)
    inner = source[3 : 3 + size]
    return inner if not rest and size >= 0 and _gap_keeping(inner) == source else None


# Where a long text may be cut: after a newline that follows a non-space character and is
# followed by a non-space character other than "/". Why every named pattern splits the two
# sides exactly as it splits the whole text (say the newline is at n, the cut at n + 1):
# - No chunk spans the cut. The only alternatives that can take a newline are the whitespace
#   runs (\s+, \s*[\r\n], cl100k's \s++$), which stop at the non-space character after it,
#   and the punctuation run's tail (cl100k's [\r\n]*+, o200k's [\r\n/]*), which would go on
#   only into \r, \n or (o200k) "/", excluded here. The optional prefix of the letter runs
#   ([^\r\n\p{L}\p{N}]?, gpt2's " ?") is never a newline. A whitespace run cannot start
#   before n, which follows a non-space character.
# - The chunk ending at n is the same with or without the text after the cut: matching reads
#   at most one character past n (the quantifiers above, the lookahead (?!\S)), and a
#   non-space character other than "/", \r or \n stops those quantifiers as the end of the
#   text does. Where the two differ (gpt2's \s+(?!\S), cl100k's \s++$ succeed only at the
#   end), the next alternative gives the same chunk "\n" (\s+, \s*[\r\n]).
# - The chunks after the cut start at the cut in both, and no pattern has a lookbehind.
# The tests check this on generated text for each named pattern. Custom patterns never cut.
_SAFE_CUT = regex.compile(r"(?<=\S\n)(?=[^\s/])")


# ASCII text goes through the standard ``re`` module, which splits it 2-3x faster than
# ``regex`` (RESULTS.md). On ASCII text each class of a named pattern (\p{L}, \p{N}, \s, ...)
# matches exactly the ASCII characters that ``regex`` puts in it, so the pattern with every
# class written out as those characters gives the same chunks. The escapes below are all
# that the named patterns hold besides literal characters; ``re`` reads the rest (possessive
# quantifiers from Python 3.11 on, ``(?i:...)``, ``$``, lookaheads) as ``regex`` does.
_CLASS_ESCAPE = regex.compile(r"\\[pP]\{\w+\}|\\[sS]")
_SOURCE_TOKEN = regex.compile(r"\\[pP]\{\w+\}|\\.|\[\^?|\]|[^\\\[\]]+")
_NO_ASCII = r"^\x00-\x7f"


def _ascii_members(escape: str) -> str:
    """The ASCII characters that the class ``escape`` matches, as class items: ranges of
    consecutive code points (\\xHH-\\xHH) and single ones."""
    codes = [code for code in range(128) if regex.fullmatch(escape, chr(code))]
    items, start = [], 0
    for end in range(1, len(codes) + 1):
        if end == len(codes) or codes[end] != codes[end - 1] + 1:
            first, last = codes[start], codes[end - 1]
            items.append(f"\\x{first:02x}" + (f"-\\x{last:02x}" if last > first else ""))
            start = end
    return "".join(items)


def _ascii_source(source: str) -> str:
    """``source`` with each class escape written out as its ASCII characters: the same
    split of ASCII text."""
    written, in_class = [], False
    for token in _SOURCE_TOKEN.findall(source):
        if _CLASS_ESCAPE.fullmatch(token):
            members = _ascii_members(token)
            # outside a class, a class that no ASCII character is in never matches
            written.append(members if in_class else f"[{members or _NO_ASCII}]")
        else:
            in_class = token.startswith("[") or (in_class and token != "]")
            written.append(token)
    return "".join(written)


def _ascii_compiled(source: str) -> re.Pattern | None:
    """The ``re`` form of a named pattern for ASCII text; None where ``re`` cannot read it
    (possessive quantifiers need Python 3.11)."""
    try:
        return re.compile(_ascii_source(source))
    except re.error:
        return None


# Mixed text: its ASCII stretches of at least this many characters are split the fast way,
# between two word ends. A word end is a cut that splits every named pattern exactly like
# the whole text: an ASCII letter, then a space, cut between them. Why:
# - No chunk holds both: a letter is in no class but the letter runs (and gpt2's and
#   cl100k's contractions, which end in letters), and no alternative goes on from a letter
#   into a space. So a chunk ends at the cut, and the chunks after it start at the cut in
#   both texts (no pattern has a lookbehind or a start anchor).
# - The chunks before the cut are the same when the text ends there: the letter runs and
#   the contractions stop at a space as at the end of the text, and no other alternative
#   running at the cut (whitespace runs, \s++$, (?!\S)) can start left of a letter.
ASCII_STRETCH_MIN = 64
# (starting only where a stretch starts, so a short stretch is read once, not from each of
# its characters)
_ASCII_STRETCH = re.compile(f"(?<![\\x00-\\x7f])[\\x00-\\x7f]{{{ASCII_STRETCH_MIN},}}")
_WORD_END = re.compile("[A-Za-z] ")

# The Unicode version decides what \p{L}, \p{N}, \p{M} and \s match, so which chunks a text
# has: the ``regex`` module's tables decide here (tiktoken's Rust engine has its own). regex
# does not say which version it has; the number of assigned characters (all code points but
# unassigned, control, private-use and surrogate ones) tells, as the Unicode Standard
# publishes it for each version.
_ASSIGNED_CHARACTERS = {
    143_859: "13.0", 144_697: "14.0", 149_186: "15.0", 149_813: "15.1", 154_998: "16.0",
    159_801: "17.0",
}
_ASSIGNED = r"[^\p{Cn}\p{Cc}\p{Co}\p{Cs}]"


def unicode_version_of(assigned_characters: int) -> str:
    """The Unicode version with this many assigned characters ("unknown (N ...)" if none)."""
    version = _ASSIGNED_CHARACTERS.get(assigned_characters)
    return version or f"unknown ({assigned_characters} assigned characters)"


@lru_cache(maxsize=1)
def unicode_version() -> str:
    """The Unicode version of the ``regex`` module's tables, which the split patterns use."""
    every_code_point = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    return unicode_version_of(len(regex.findall(_ASSIGNED, every_code_point)))


class SplitPattern:
    """A compiled split pattern, with its name when it is one of the published ones."""

    __slots__ = ("name", "source", "_compiled", "_ascii")

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
        self._ascii = _ascii_compiled(source) if self.can_cut else None

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

    @classmethod
    def from_oniguruma(cls, source: str) -> SplitPattern:
        """The pattern Hugging Face splits with when given ``source`` (see
        :attr:`oniguruma_source`). A custom one must mean the same in both engines (else a
        ValueError names the construct; ``x{n,m}+`` is read as Oniguruma reads it), and keeps
        the text between its matches as chunks, as Hugging Face's ``Isolated`` split does."""
        for name in NAMED_PATTERNS:
            named = cls.resolve(name)
            if source == named.oniguruma_source:
                return named
        inner = _inner_of_gap_keeping(source)
        meant = _repeated_intervals(source if inner is None else inner)
        _check_oniguruma(meant)
        return cls(_gap_keeping(meant))

    @property
    def can_cut(self) -> bool:
        """Whether long texts can be cut into independently split pieces (named patterns)."""
        return NAMED_PATTERNS.get(self.name or "") == self.source

    @property
    def oniguruma_source(self) -> str:
        """The pattern as Oniguruma (used by Hugging Face tokenizers) should be given it;
        a ValueError for a custom pattern with a construct that Oniguruma reads otherwise."""
        if self.name is None:
            _check_oniguruma(_inner_of_gap_keeping(self.source) or self.source)
        return _ONIGURUMA_PATTERNS.get(self.name or "", self.source)

    def split(self, text: str) -> list[str]:
        """The chunks of ``text``, in order; their concatenation is ``text``."""
        if self._ascii is not None:
            return self._ascii.findall(text) if text.isascii() else self._split_mixed(text)
        chunks = self._compiled.findall(text)
        if self.name is None and sum(map(len, chunks)) != len(text):
            self._report_gap(text)
        return chunks

    def _split_mixed(self, text: str) -> list[str]:
        """Split ``text``, its long ASCII stretches (between word ends) by the ASCII form."""
        assert self._ascii is not None
        chunks: list[str] = []
        done = 0  # text[:done] is split
        for stretch in _ASCII_STRETCH.finditer(text):
            first = _WORD_END.search(text, stretch.start(), stretch.end())
            if first is None:
                continue
            start = first.start() + 1
            end = text.rfind(" ", start + 1, stretch.end())
            while end > start and not _WORD_END.match(text, end - 1):
                end = text.rfind(" ", start + 1, end)
            if end - start < ASCII_STRETCH_MIN:
                continue
            chunks += self._compiled.findall(text, done, start)
            chunks += self._ascii.findall(text, start, end)
            done = end
        chunks += self._compiled.findall(text, done)
        return chunks

    def cut(
        self, text: str, piece_chars: int, avoid: Callable[[int], bool] | None = None
    ) -> list[str]:
        """Cut ``text`` into pieces of about ``piece_chars`` that split exactly like the whole.

        Cuts go only where ``_SAFE_CUT`` allows (after a newline between two non-space
        characters, the second not "/"), never at a position where ``avoid`` is true, and only
        for the named patterns; other texts stay whole.
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
