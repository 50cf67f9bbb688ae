"""GPT-2's reversible map from bytes to printable characters.

GPT-2's ``encoder.json``/``vocab.bpe`` and Hugging Face's byte-level files store tokens as
strings in which every byte is one printable character: bytes that are printable ASCII or
Latin-1 (except the soft hyphen) stand for themselves, the other 68 bytes are shifted, in
byte order, to U+0100 and up. The order of these characters is also the order in which
Hugging Face's trainer numbers the 256 byte tokens, which decides its ties.
"""

from __future__ import annotations

_SELF_MAPPED = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]


def _byte_to_char() -> list[str]:
    chars = [""] * 256
    for byte in _SELF_MAPPED:
        chars[byte] = chr(byte)
    shifted = (byte for byte in range(256) if not chars[byte])
    for offset, byte in enumerate(shifted):
        chars[byte] = chr(256 + offset)
    return chars


BYTE_TO_CHAR: list[str] = _byte_to_char()
CHAR_TO_BYTE: dict[str, int] = {char: byte for byte, char in enumerate(BYTE_TO_CHAR)}

# The 256 byte values sorted by their character: Hugging Face's id order for byte tokens.
BYTES_IN_CHAR_ORDER: list[int] = sorted(range(256), key=lambda byte: BYTE_TO_CHAR[byte])


def bytes_to_chars(data: bytes) -> str:
    """``data`` written in the GPT-2 alphabet, one character per byte."""
    return "".join(BYTE_TO_CHAR[byte] for byte in data)


def chars_to_bytes(text: str) -> bytes:
    """Inverse of :func:`bytes_to_chars`; raises ValueError on a character outside it."""
    try:
        return bytes(CHAR_TO_BYTE[char] for char in text)
    except KeyError as exc:
        raise ValueError(f"{text!r} is not in the GPT-2 byte alphabet ({exc.args[0]!r})") from exc
