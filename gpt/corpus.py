"""The built-in corpus: the topic texts of Python's own documentation.

Every CPython install ships `pydoc_data.topics` (what `help("if")` prints): about 80
documents, 460,000 characters of English prose with code, enough for a tiny
character-level GPT to learn words and syntax in a few minutes. Some distributions strip
it; then the command line asks for `--data`.
"""

from __future__ import annotations

BUILTIN_NAME = "pydoc-topics"


class CorpusUnavailable(RuntimeError):
    """The built-in corpus is missing from this Python install."""


def builtin_documents() -> list[str]:
    """The documentation topics, one document per topic, in a fixed (sorted) order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:
        raise CorpusUnavailable(
            "the built-in corpus (the Python documentation topics, module pydoc_data.topics) "
            "is not part of this Python install; pass your own text with --data FILE"
        ) from exc
    return [topics[name] for name in sorted(topics)]
