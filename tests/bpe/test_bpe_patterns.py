"""Split patterns: the named ones, custom ones, and cutting text where the split cannot change."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers

from bpe import NAMED_PATTERNS, SplitPattern
from bpe.corpus import builtin_corpus

# Characters that exercise every alternative of the patterns, newlines in particular.
NEWLINE_HEAVY_TEXT = st.text(
    alphabet=st.sampled_from(list("ab Z19.,'s\n\n\r\t/") + ["é", "中", "😀", "\u0301", "\xa0"]),
    max_size=300,
)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
@settings(max_examples=60, deadline=None)
@given(text=NEWLINE_HEAVY_TEXT, piece_chars=st.integers(1, 40))
def test_cut_pieces_split_exactly_like_the_whole_text(name, text, piece_chars):
    pattern = SplitPattern.resolve(name)
    pieces = pattern.cut(text, piece_chars)
    assert "".join(pieces) == text
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == pattern.split(text)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_cut_finds_cuts_in_prose_and_respects_avoid(name):
    pattern = SplitPattern.resolve(name)
    text = builtin_corpus()[:50_000]
    pieces = pattern.cut(text, 1000)
    assert len(pieces) > 20
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == pattern.split(text)
    first_cut = len(pieces[0])
    avoided = pattern.cut(text, 1000, avoid=lambda position: position == first_cut)
    assert len(avoided[0]) > first_cut
    assert "".join(avoided) == text


def test_last_cut_is_after_a_newline_between_non_space_characters():
    pattern = SplitPattern.resolve("gpt2")
    text = "ab\ncd\n\nef\ngh\n"
    assert pattern.last_cut(text) == text.index("gh")
    assert pattern.last_cut(text, since=text.index("gh")) == 0
    assert pattern.last_cut("no newline here") == 0
    assert pattern.last_cut(text, avoid=lambda position: position == text.index("gh")) == 3
    assert SplitPattern.resolve(r"\S+|\s+").last_cut(text) == 0


def test_custom_patterns_are_never_cut():
    pattern = SplitPattern.resolve(r"\S+|\s+")
    assert not pattern.can_cut
    assert pattern.cut("a\nb\n" * 100, 4) == ["a\nb\n" * 100]


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_oniguruma_form_splits_like_the_pattern(name):
    """Hugging Face runs the exported regex with Oniguruma; it must split the same way."""
    pattern = SplitPattern.resolve(name)
    text = builtin_corpus()[:100_000] + " 1234567 x\r\n\r\n  y  \t\n"
    splitter = pre_tokenizers.Split(Regex(pattern.oniguruma_source), "isolated")
    assert [piece for piece, _ in splitter.pre_tokenize_str(text)] == pattern.split(text)


def test_cl100k_and_o200k_group_digits_by_three_gpt2_does_not():
    assert SplitPattern.resolve("cl100k").split("1234567") == ["123", "456", "7"]
    assert SplitPattern.resolve("o200k").split("1234567") == ["123", "456", "7"]
    assert SplitPattern.resolve("gpt2").split("1234567") == ["1234567"]
    assert SplitPattern.resolve("gpt2").split("I'm here") == ["I", "'m", " here"]


def test_resolve_names_and_custom_patterns():
    named = SplitPattern.resolve("o200k")
    assert named.name == "o200k" and named.source == NAMED_PATTERNS["o200k"]
    assert SplitPattern.resolve(named) is named
    custom = SplitPattern.resolve(r"\w+|\W+")
    assert custom.name is None
    assert custom.split("ab, cd") == ["ab", ", ", "cd"]
    assert custom == SplitPattern.resolve(r"\w+|\W+")


def test_pattern_that_does_not_compile_is_a_clear_error():
    with pytest.raises(ValueError, match="does not compile"):
        SplitPattern.resolve("(unclosed")


def test_pattern_with_capturing_groups_is_rejected():
    with pytest.raises(ValueError, match="capturing groups"):
        SplitPattern.resolve(r"(\w+)|\s+")


def test_pattern_that_skips_text_is_an_error_naming_the_position():
    pattern = SplitPattern.resolve(r"\w+")
    with pytest.raises(ValueError, match=r"at position 2 \(' cd'\)"):
        pattern.split("ab cd")
    with pytest.raises(ValueError, match="at position 2"):
        pattern.split("ab  ")


def test_pattern_must_be_a_string():
    with pytest.raises(TypeError, match="pattern must be a str"):
        SplitPattern.resolve(42)


def test_patterns_pickle_by_source():
    import pickle

    pattern = SplitPattern.resolve("cl100k")
    copy = pickle.loads(pickle.dumps(pattern))
    assert copy == pattern and copy.name == "cl100k"
    assert copy.split("1234 x") == pattern.split("1234 x")
