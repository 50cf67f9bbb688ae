"""Decoding: bytes and str, error handling, single tokens, and the streaming decoder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe.decoding
from bpe import StreamDecoder, Tokenizer
from bpe.corpus import builtin_corpus


@pytest.fixture(scope="module")
def tokenizer():
    text = builtin_corpus()[:60_000] + " 中文字 😀👍🏽 ñandú " * 20
    return Tokenizer.train(text, vocab_size=800, special_tokens=["<|endoftext|>"])


def test_decode_accepts_lists_iterables_and_arrays(tokenizer):
    text = "Decoding 中文 😀 works."
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(iter(ids)) == text
    assert tokenizer.decode(np.array(ids, dtype=np.uint16)) == text
    assert tokenizer.decode_bytes(np.array(ids)) == text.encode()


def test_special_tokens_decode_to_their_text(tokenizer):
    ids = tokenizer.encode("a<|endoftext|>b", allowed_special="all")
    assert tokenizer.eot in ids
    assert tokenizer.decode(ids) == "a<|endoftext|>b"
    assert tokenizer.decode_single_token_bytes(tokenizer.eot) == b"<|endoftext|>"


def test_single_token_bytes(tokenizer):
    for data, token in list(tokenizer.mergeable_ranks.items())[::50]:
        assert tokenizer.decode_single_token_bytes(token) == data


def test_partial_utf8_is_replaced_or_refused(tokenizer):
    emoji = "😀".encode()
    first_byte = tokenizer.mergeable_ranks[emoji[:1]]
    assert tokenizer.decode([first_byte]) == "\ufffd"
    assert tokenizer.decode([first_byte], errors="ignore") == ""
    with pytest.raises(UnicodeDecodeError):
        tokenizer.decode([first_byte], errors="strict")


@pytest.mark.parametrize("bad", [-1, 10**6, "7", 1.5, None])
def test_invalid_ids_are_clear_errors(tokenizer, bad):
    with pytest.raises(ValueError, match="cannot decode token id"):
        tokenizer.decode([1, bad])


def test_unknown_error_handler_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match="errors must be a codec error handler"):
        tokenizer.decode([65], errors="bogus")
    with pytest.raises(ValueError, match="errors must be"):
        tokenizer.stream_decoder(errors="bogus")


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab ñ中😀👍🏽\n")), max_size=60),
       sizes=st.lists(st.integers(1, 4), min_size=1))
def test_stream_decoder_emits_only_complete_text(tokenizer, text, sizes):
    ids = tokenizer.encode(text)
    stream = tokenizer.stream_decoder()
    emitted = ""
    position, step = 0, 0
    while position < len(ids):
        size = sizes[step % len(sizes)]
        emitted += stream.feed(ids[position : position + size])
        assert text.startswith(emitted)  # never a replacement character for held-back bytes
        position += size
        step += 1
    emitted += stream.finish()
    assert emitted == text


def test_stream_decoder_holds_back_an_incomplete_sequence(tokenizer):
    emoji = "😀".encode()
    byte_ids = [tokenizer.mergeable_ranks[emoji[i : i + 1]] for i in range(4)]
    stream = tokenizer.stream_decoder()
    assert stream.feed(tokenizer.encode("hi ")) == "hi "
    assert [stream.feed(token) for token in byte_ids[:3]] == ["", "", ""]
    assert stream.feed(byte_ids[3]) == "😀"
    assert stream.feed(byte_ids[:2]) == ""
    assert stream.finish() == "\ufffd"


def test_stream_decoder_strict_mode_raises_at_the_end(tokenizer):
    stream = StreamDecoder(tokenizer.decode_bytes, errors="strict")
    assert stream.feed(tokenizer.mergeable_ranks["é".encode()[:1]]) == ""
    with pytest.raises(UnicodeDecodeError):
        stream.finish()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_gather_path_equals_joining_token_bytes(tokenizer, data):
    ids = data.draw(st.lists(st.integers(0, tokenizer.vocab_size - 1), max_size=300))
    expected = b"".join(tokenizer.decode_single_token_bytes(token) for token in ids)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe.decoding, "GATHER_MIN_IDS", 0)
        assert tokenizer.decode_bytes(ids) == expected
    assert tokenizer.decode_bytes(np.array(ids, dtype=np.uint16)) == expected


def test_long_sequences_decode_and_validate(tokenizer):
    text = builtin_corpus()[:40_000] + "<|endoftext|>"
    ids = tokenizer.encode(text, allowed_special="all")
    assert len(ids) > bpe.decoding.GATHER_MIN_IDS
    assert tokenizer.decode(ids) == text
    for bad in (-1, tokenizer.vocab_size):
        with pytest.raises(ValueError, match=f"cannot decode token id {bad}"):
            tokenizer.decode([*ids, bad])
    with pytest.raises(ValueError, match="flat sequence of ints"):
        tokenizer.decode(np.array(ids, dtype=np.float32))


def test_decoding_a_hole_in_the_ids_names_the_hole():
    # Like cl100k, whose id 100256 belongs to no token: ids 256..299 are unused here.
    ranks = {bytes([byte]): byte for byte in range(256)} | {b"ab": 300}
    tokenizer = Tokenizer(ranks, pattern="gpt2", special_tokens={"<|endoftext|>": 301})
    assert tokenizer.decode([97, 300, 301]) == "aab<|endoftext|>"
    for ids in ([97, 256], np.array([97, 299] * 3000)):
        hole = r"token id 2\d\d: it is a hole in this vocabulary, no token has that id"
        with pytest.raises(ValueError, match=hole + r" \(ids below 302 without a token: 44\)"):
            tokenizer.decode(ids)
    with pytest.raises(ValueError, match="token id 302: ids must be ints below 302"):
        tokenizer.decode([302])


@pytest.mark.parametrize("bad", [1.0, True, 97.0])
def test_ids_that_only_compare_equal_to_ints_are_refused(bad):
    """A float or a bool hashes like the int it equals: 1.0 must not decode as token 1."""
    tokenizer = Tokenizer({bytes([byte]): byte for byte in range(256)}, pattern="gpt2")
    assert tokenizer.decode([97, np.int64(98)]) == "ab"
    for ids in ([97, bad], [bad] * 5000):
        with pytest.raises(ValueError, match=f"token id {bad!r}|flat sequence of ints"):
            tokenizer.decode(ids)
