"""Parity with tiktoken: the same ranks, pattern and special tokens give the same ids."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe.encoding
from bpe import NAMED_PATTERNS, DisallowedSpecialTokenError, Tokenizer
from bpe.corpus import builtin_corpus

tiktoken = pytest.importorskip("tiktoken")

SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>"]

# Any code point but surrogates (those are checked separately), mixed with pieces the trained
# vocabulary knows, so that merges happen.
UNICODE_TEXT = st.lists(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(list("中文字😀👍🏽\r\n  \t's'LL123") + [" the", "tion", "ing "]),
    max_size=120,
).map("".join)
SPECIAL_HEAVY_TEXT = st.lists(
    st.sampled_from(SPECIALS + ["<|", "|>", "endoftext", " a", "\n", "x1", "é"]), max_size=30
).map("".join)


def trained(pattern, special_tokens):
    corpus = builtin_corpus()
    text = corpus[:150_000] + "\n1234567890 42 3.14159 ¡olé! ñandú 中文字 😀👍🏽 \r\n\r\n"
    return Tokenizer.train(text, vocab_size=2000, pattern=pattern, special_tokens=special_tokens)


@pytest.fixture(scope="module", params=sorted(NAMED_PATTERNS))
def pair(request):
    """Our tokenizer for one named pattern, and tiktoken's Encoding over the same ranks."""
    ours = trained(request.param, SPECIALS)
    theirs = tiktoken.Encoding(
        name=f"test-{request.param}",
        pat_str=ours.pattern.source,
        mergeable_ranks=ours.mergeable_ranks,
        special_tokens=ours.special_tokens,
    )
    return ours, theirs


def test_builtin_corpus_encodes_identically(pair):
    ours, theirs = pair
    corpus = builtin_corpus()
    assert ours.encode_ordinary(corpus) == theirs.encode_ordinary(corpus)
    assert ours.encode(corpus) == theirs.encode(corpus)


def test_long_texts_encoded_in_pieces_match(pair, monkeypatch):
    monkeypatch.setattr(bpe.encoding, "ENCODE_PIECE_CHARS", 300)
    ours, theirs = pair
    text = builtin_corpus()[:60_000]
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


@settings(max_examples=60, deadline=None)
@given(text=UNICODE_TEXT)
def test_generated_text_encodes_identically(pair, text):
    ours, theirs = pair
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


@settings(max_examples=40, deadline=None)
@given(text=SPECIAL_HEAVY_TEXT)
def test_special_tokens_follow_tiktoken(pair, text):
    ours, theirs = pair
    assert ours.encode(text, allowed_special="all") == theirs.encode(text, allowed_special="all")
    assert ours.encode(text, disallowed_special=()) == theirs.encode(text, disallowed_special=())
    some = {"<|endoftext|>"}
    assert ours.encode(text, allowed_special=some, disallowed_special=()) == theirs.encode(
        text, allowed_special=some, disallowed_special=()
    )
    if any(special in text for special in SPECIALS):
        with pytest.raises(DisallowedSpecialTokenError):
            ours.encode(text)
        with pytest.raises(ValueError):
            theirs.encode(text)
    else:
        assert ours.encode(text) == theirs.encode(text)


def test_lone_surrogates_are_replaced_as_tiktoken_does(pair):
    ours, theirs = pair
    for text in ["a\ud800b", "\udfff", "x \ud83d\ude00 y", "\ud83d"]:
        assert ours.encode(text) == theirs.encode(text)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_tokenizer_without_special_tokens_matches(name):
    ours = trained(name, [])
    theirs = tiktoken.Encoding(
        name=f"plain-{name}", pat_str=ours.pattern.source,
        mergeable_ranks=ours.mergeable_ranks, special_tokens={},
    )
    text = builtin_corpus()[200_000:300_000] + "<|endoftext|>"
    assert ours.encode(text) == theirs.encode(text)
    assert ours.vocab_size == theirs.n_vocab
