"""The character-level tokenizer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpe import CharTokenizer

TEXT = "hello, world!\nthe quick brown fox."


def test_alphabet_is_the_sorted_distinct_characters():
    tokenizer = CharTokenizer.from_text(TEXT)
    assert tokenizer.chars == sorted(set(TEXT))
    assert tokenizer.vocab_size == len(set(TEXT))
    assert tokenizer.encode("\n") == [0]
    assert tokenizer.special_tokens == {} and tokenizer.eot is None


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1, max_size=200))
def test_round_trip_over_its_own_alphabet(text):
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(np.array(ids)) == text
    assert all(0 <= token < tokenizer.vocab_size for token in ids)


def test_unknown_character_is_a_clear_error():
    with pytest.raises(ValueError, match="'Z' is not in this tokenizer's alphabet"):
        CharTokenizer.from_text(TEXT).encode("Zebra")


@pytest.mark.parametrize("bad", [-1, 999])
def test_invalid_ids_are_clear_errors(bad):
    with pytest.raises(ValueError, match=f"cannot decode token id {bad}"):
        CharTokenizer.from_text(TEXT).decode([0, bad])


@pytest.mark.parametrize(
    ("chars", "message"),
    [(["a", "a"], "distinct"), (["ab"], "single characters"), ([], "must not be empty")],
)
def test_invalid_alphabets_are_clear_errors(chars, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer(chars)


def test_from_text_needs_text():
    with pytest.raises(ValueError, match="non-empty str"):
        CharTokenizer.from_text("")
