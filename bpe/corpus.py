"""The built-in corpus: the documentation topics bundled with every Python install.

``pydoc_data.topics`` holds the text ``help()`` shows for keywords and topics (what
``help("if")`` prints): about 80 documents, a few hundred thousand characters of English
prose with code examples. Tests, examples, the benchmarks and ``python -m gpt`` use it when
no other text is at hand. Some distributions strip it; then :class:`CorpusUnavailable`
says so (and the gpt command line asks for ``--data``).
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


def builtin_corpus() -> str:
    """The built-in documents as one text, with a blank line between two documents."""
    return "\n\n".join(builtin_documents())
