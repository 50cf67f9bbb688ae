"""Special tokens and tiktoken's rules for meeting them in text.

``encode(text, allowed_special=..., disallowed_special=...)`` follows tiktoken:

- an *allowed* special token that occurs in the text becomes its special id;
- by default (``disallowed_special="all"``) every special token that is not allowed is
  disallowed, and text containing one raises :class:`DisallowedSpecialTokenError`, so that
  user text can never silently turn into control tokens;
- ``disallowed_special=()`` encodes special-looking text as ordinary text.

Both options take ``"all"`` or a collection of special-token strings. Where several special
tokens could match at one position, the longest wins.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import lru_cache
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

    def __init__(self, tokens: Mapping[str, int]) -> None:
        for token, token_id in tokens.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"special tokens must be non-empty str, got {token!r}")
            if not isinstance(token_id, int) or token_id < 0:
                raise ValueError(f"special token {token!r} has invalid id {token_id!r}")
        if len(set(tokens.values())) != len(tokens):
            raise ValueError(f"special tokens must have distinct ids, got {dict(tokens)}")
        self.ids: dict[str, int] = dict(tokens)

    def resolve(
        self, allowed_special: SpecialSet, disallowed_special: SpecialSet
    ) -> tuple[frozenset[str], frozenset[str]]:
        """The (allowed, disallowed) token sets that the two options name."""
        allowed = self._names(allowed_special, "allowed_special")
        if disallowed_special == "all":
            return allowed, frozenset(self.ids) - allowed
        return allowed, self._names(disallowed_special, "disallowed_special")

    def check(self, text: str, disallowed: frozenset[str]) -> None:
        """Raise DisallowedSpecialTokenError if ``text`` contains a disallowed token."""
        if disallowed:
            match = _alternation(disallowed).search(text)
            if match:
                raise DisallowedSpecialTokenError(match.group())

    def find(self, text: str, allowed: frozenset[str]) -> Iterator[regex.Match[str]]:
        """The occurrences of allowed tokens in ``text``, longest first at each position."""
        if not allowed:
            return iter(())
        return _alternation(allowed).finditer(text)

    def split(self, text: str) -> list[str]:
        """The pieces of ``text`` between occurrences of any special token."""
        if not self.ids:
            return [text]
        return _alternation(frozenset(self.ids)).split(text)

    def within(self, text: str, tokens: frozenset[str]) -> Callable[[int], bool] | None:
        """A test for positions strictly inside an occurrence of ``tokens`` in ``text``.

        None when there is no occurrence. Used to keep cuts out of special tokens.
        """
        spans = [match.span() for match in self.find(text, tokens)]
        if not spans:
            return None
        starts = [start for start, _ in spans]

        def inside(position: int) -> bool:
            index = bisect_right(starts, position - 1) - 1
            return index >= 0 and spans[index][1] > position

        return inside

    def _names(self, value: SpecialSet, option: str) -> frozenset[str]:
        if value == "all":
            return frozenset(self.ids)
        if isinstance(value, str):
            raise TypeError(
                f"{option} must be 'all' or a collection of special tokens, got the str {value!r}"
            )
        names = frozenset(value)
        unknown = names - self.ids.keys()
        if unknown:
            raise ValueError(
                f"{option} names tokens that are not special tokens of this tokenizer: "
                f"{sorted(unknown)} (special tokens: {sorted(self.ids)})"
            )
        return names


@lru_cache(maxsize=64)
def _alternation(tokens: frozenset[str]) -> regex.Pattern[str]:
    longest_first = sorted(tokens, key=lambda token: (-len(token), token))
    return regex.compile("|".join(map(regex.escape, longest_first)))
