"""What happens to surrogate code points, which a Python str can hold but UTF-8 cannot.

Text is handled as tiktoken handles it: a well-formed pair of surrogates becomes the
character it encodes, and a lone surrogate becomes U+FFFD (the replacement character).
So ``decode(encode(text))`` equals ``replace_surrogates(text)`` for every str.
"""

from __future__ import annotations


def replace_surrogates(text: str) -> str:
    """Join surrogate pairs and replace lone surrogates with U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encodable(text: str) -> str:
    """``text`` itself when it encodes to UTF-8, else :func:`replace_surrogates` of it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return replace_surrogates(text)
    return text
