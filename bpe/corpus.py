"""A built-in English corpus: the documentation topics bundled with every Python install.

``pydoc_data.topics`` holds the text ``help()`` shows for keywords and topics, about a
megabyte of English prose with code examples; tests, examples and the benchmark use it when
no other text is at hand.
"""

from __future__ import annotations


def builtin_corpus() -> str:
    """The bundled pydoc topics, joined in key order with blank lines between them."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))
