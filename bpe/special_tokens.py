"""Special tokens and tiktoken's rules for meeting them in text.

``encode(text, allowed_special=..., disallowed_special=...)`` follows tiktoken:

- an *allowed* special token that occurs in the text becomes its special id;
- by default (``disallowed_special="all"``) every special token that is not allowed is
  disallowed, and text containing one raises :class:`DisallowedSpecialTokenError`, so that
  user text can never silently turn into control tokens;
- ``disallowed_special=()`` encodes special-looking text as ordinary text.

Both options take ``"all"``; otherwise ``allowed_special`` takes a set (tiktoken raises
TypeError for a list, and so do we) and ignores names the vocabulary lacks, while
``disallowed_special`` takes any collection of strings (or None, as ``()``) and refuses each
in the text, whether or not the vocabulary has it (so ``{"<|im_start|>"}`` guards a text
for a model that has it).
Deliberately unlike tiktoken, a str other than ``"all"`` is a TypeError for both (tiktoken
reads ``disallowed_special="xy"`` as the characters ``x`` and ``y``). Where several special
tokens could match at one position, the longest wins.

*Late* special tokens (Hugging Face's "normalized" added tokens, those that
``tokenizers.Tokenizer.add_tokens`` makes) are matched as ``tokenizers`` matches them:
after the others, only in the text the others' occurrences leave. A tokenizer without late
tokens (every one but an imported ``tokenizer.json`` with such tokens) makes one pass.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import lru_cache
from itertools import accumulate
from typing import Literal

import regex

SpecialSet = Literal["all"] | Collection[str]


class DisallowedSpecialTokenError(ValueError):
    """The text contains a special token that the call did not allow."""

    def __init__(self, token: str) -> None:
        super().__init__(
            f"the text contains the special token {token!r}, which this call does not allow. "
            f"Pass allowed_special={{{token!r}}} (or 'all') to encode it as a special token, "
            "or disallowed_special=() to encode it as ordinary text."
        )
        self.token = token


class SpecialTokens:
    """A tokenizer's special tokens (string to id) and how to find them in text."""

    def __init__(self, tokens: Mapping[str, int], late: Collection[str] = ()) -> None:
        for token, token_id in tokens.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"special tokens must be non-empty str, got {token!r}")
            if not isinstance(token_id, int) or token_id < 0:
                raise ValueError(f"special token {token!r} has invalid id {token_id!r}")
        if len(set(tokens.values())) != len(tokens):
            raise ValueError(f"special tokens must have distinct ids, got {dict(tokens)}")
        self.ids: dict[str, int] = dict(tokens)
        self.late = frozenset(late)
        if not self.late <= self.ids.keys():
            raise ValueError(f"late special tokens {sorted(self.late - self.ids.keys())} are "
                             "not special tokens")

    def resolve(
        self, allowed_special: SpecialSet, disallowed_special: SpecialSet
    ) -> tuple[frozenset[str], frozenset[str]]:
        """The (allowed, disallowed) strings that the two options name, as tiktoken reads them.

        ``allowed_special`` is ``"all"`` or a set (a list or tuple is a TypeError, as in
        tiktoken); names that are not special tokens of this vocabulary are ignored.
        ``disallowed_special`` is ``"all"`` (every special token not allowed) or any
        collection of strings; each is refused in the text, special token or not.
        """
        if allowed_special == "all":
            allowed = frozenset(self.ids)
        elif isinstance(allowed_special, (set, frozenset)):
            allowed = frozenset(allowed_special).intersection(self.ids)
        else:
            raise TypeError(
                "allowed_special must be 'all' or a set of special tokens (as in tiktoken), "
                f"got {type(allowed_special).__name__} {allowed_special!r}"
            )
        if disallowed_special == "all":
            return allowed, frozenset(self.ids) - allowed
        if disallowed_special is None:  # as tiktoken reads it: nothing refused
            return allowed, frozenset()
        if isinstance(disallowed_special, str) or not isinstance(disallowed_special, Collection):
            raise TypeError(
                "disallowed_special must be 'all' or a collection of strings, got "
                f"{type(disallowed_special).__name__} {disallowed_special!r}"
            )
        disallowed = frozenset(disallowed_special)
        for token in disallowed:
            if not isinstance(token, str) or not token:
                raise TypeError(f"disallowed_special must hold non-empty str, got {token!r}")
        return allowed, disallowed

    def check(self, text: str, disallowed: frozenset[str]) -> None:
        """Raise DisallowedSpecialTokenError if ``text`` contains a disallowed token."""
        if disallowed:
            match = _alternation(disallowed).search(text)
            if match:
                raise DisallowedSpecialTokenError(match.group())

    def find(self, text: str, allowed: frozenset[str]) -> Iterator[regex.Match[str]]:
        """The occurrences of allowed tokens in ``text``, in order, longest first at each
        position (the late ones in the text between the others' occurrences)."""
        if not allowed:
            return iter(())
        late = allowed & self.late
        if not late or late == allowed:
            return _alternation(allowed).finditer(text)
        return _two_passes(text, _alternation(allowed - late), _alternation(late))

    def split(self, text: str) -> list[str]:
        """The pieces of ``text`` between occurrences of any special token."""
        if not self.ids:
            return [text]
        return _alternation(frozenset(self.ids)).split(text)

    def within(self, text: str, tokens: frozenset[str]) -> Callable[[int], bool] | None:
        """A test for positions strictly inside an occurrence of ``tokens`` in ``text``.

        None when there is no occurrence. Used to keep cuts out of special tokens. Every
        occurrence counts, also one that overlaps another: which ones a scan matches depends
        on where it starts, and ``text`` may be a window of a longer text (a file's blocks).
        """
        if not tokens:  # (an empty alternation would match at every position)
            return None
        spans = [match.span() for match in _alternation(tokens).finditer(text, overlapped=True)]
        if not spans:
            return None
        starts = [start for start, _ in spans]
        ends = list(accumulate((end for _, end in spans), max))  # the furthest end so far

        def inside(position: int) -> bool:
            index = bisect_right(starts, position - 1) - 1
            return index >= 0 and ends[index] > position

        return inside


def _two_passes(text: str, first: regex.Pattern[str],
                later: regex.Pattern[str]) -> Iterator[regex.Match[str]]:
    """The matches of `first` in `text`, and between them those of `later`, in order."""
    position = 0
    for match in first.finditer(text):
        yield from later.finditer(text, position, match.start())
        yield match
        position = match.end()
    yield from later.finditer(text, position)


@lru_cache(maxsize=64)
def _alternation(tokens: frozenset[str]) -> regex.Pattern[str]:
    longest_first = sorted(tokens, key=lambda token: (-len(token), token))
    return regex.compile("|".join(map(regex.escape, longest_first)))
