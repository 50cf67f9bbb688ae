"""Split patterns: the named ones, custom ones, and cutting text where the split cannot change."""

import itertools
import pickle

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from bpe import NAMED_PATTERNS, SplitPattern
from bpe.corpus import builtin_corpus
from bpe.patterns import ASCII_STRETCH_MIN, unicode_version, unicode_version_of


def whole_split(name, text):
    """The chunks of ``text`` by the published pattern itself, run by ``regex``."""
    return regex.findall(NAMED_PATTERNS[name], text)

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
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == whole_split(name, text)


# Few characters, so that every pair and triple around a newline occurs: punctuation, "/",
# line ends, letters of both cases, digits, contractions, a combining mark.
AROUND_NEWLINES_TEXT = st.text(alphabet=st.sampled_from(list(";/\n\r x'A1\t.") + ["\u0301"]),
                               max_size=60)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
@settings(max_examples=150, deadline=None)
@given(text=AROUND_NEWLINES_TEXT)
def test_every_allowed_cut_splits_like_the_whole_text(name, text):
    pattern = SplitPattern.resolve(name)
    pieces = pattern.cut(text, 1)  # a cut at every allowed place
    assert "".join(pieces) == text
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == whole_split(name, text)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_no_cut_between_punctuation_newline_and_slash(name):
    """o200k's punctuation run goes on through a newline into "/": ";\n//" is one chunk."""
    pattern = SplitPattern.resolve(name)
    text = "x;\n//y\nint a;\n/* c */\nb\n" * 20
    pieces = pattern.cut(text, 1)
    assert len(pieces) == 1 + 3 * 20 - 1  # after "//y\n", "int a;\n" and "/* c */\n" only
    assert not any(piece.startswith("/") for piece in pieces)
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == whole_split(name, text)
    assert (";\n//" in pattern.split(text)) == (name == "o200k")


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_cut_finds_cuts_in_prose_and_respects_avoid(name):
    pattern = SplitPattern.resolve(name)
    text = builtin_corpus()[:50_000]
    pieces = pattern.cut(text, 1000)
    assert len(pieces) > 20
    assert [chunk for piece in pieces for chunk in pattern.split(piece)] == whole_split(name, text)
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


def test_a_custom_regex_under_a_published_name_is_never_cut():
    pattern = SplitPattern(r"\S+|\s+", name="o200k")
    assert not pattern.can_cut
    assert pattern.cut("a\nb\n" * 100, 4) == ["a\nb\n" * 100]
    assert pattern.last_cut("a\nb\n" * 100) == 0


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_oniguruma_form_splits_like_the_pattern(name):
    """Hugging Face runs the exported regex with Oniguruma; it must split the same way."""
    tokenizers = pytest.importorskip("tokenizers")
    pattern = SplitPattern.resolve(name)
    text = builtin_corpus()[:100_000] + " 1234567 x\r\n\r\n  y  \t\n"
    splitter = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(pattern.oniguruma_source), "isolated"
    )
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
    pattern = SplitPattern.resolve("cl100k")
    copy = pickle.loads(pickle.dumps(pattern))
    assert copy == pattern and copy.name == "cl100k"
    assert copy.split("1234 x") == pattern.split("1234 x")


def test_unicode_version_is_told_by_the_number_of_assigned_characters():
    import unicodedata
    from collections import Counter

    # Python's own tables are a second Unicode version to check the counting on.
    every = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    categories = Counter(map(unicodedata.category, every))
    assigned = len(every) - sum(categories[name] for name in ("Cn", "Cc", "Co", "Cs"))
    assert unicodedata.unidata_version.startswith(unicode_version_of(assigned) + ".")
    assert unicode_version_of(12) == "unknown (12 assigned characters)"
    assert not unicode_version().startswith("unknown")  # a regex newer than the table


# -- ASCII text split by the standard re module -------------------------------------------

# One character of each kind the patterns tell apart on ASCII text: letters of both cases
# (and the letters of the contractions), a digit, each whitespace character, "'", "/",
# other punctuation, a control character, DEL.
ASCII_KINDS = "aZsStTdDmMlLvVeErR7 \t\n\r\x0b\x0c'/.;!\x00\x1f\x7f"


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_ascii_form_splits_every_short_ascii_text_like_the_pattern(name):
    """Every text of up to three of the kinds above, and of four of the commonest."""
    pattern = SplitPattern.resolve(name)
    texts = [*itertools.product(ASCII_KINDS, repeat=3),
             *itertools.product("aZs7 \n\r'.", repeat=4)]
    for characters in texts:
        text = "".join(characters)
        assert pattern.split(text) == whole_split(name, text), text


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_ascii_form_splits_any_ascii_text_like_the_pattern(name, text):
    assert SplitPattern.resolve(name).split(text) == whole_split(name, text)


# Long ASCII stretches with word ends, beside non-ASCII letters, marks, spaces and emoji.
MIXED_TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.sampled_from(list("ab Z9's\n\r\t/.,")), min_size=200,
                max_size=700),
        st.text(alphabet=st.sampled_from(["é", "中", "😀", "\u0301", "\xa0", "\u2019", "\u212a",
                                          "\u017f", "\x85", "\u3000", "Ⅻ", "x", " "]),
                max_size=5),
    ),
    max_size=8,
).map("".join)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
@settings(max_examples=150, deadline=None)
@given(text=MIXED_TEXT)
def test_mixed_text_splits_like_the_pattern(name, text):
    assert SplitPattern.resolve(name).split(text) == whole_split(name, text)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab Z9's\n\r\t/.") + ["é", "\u0301"]),
                    max_size=60))
def test_every_word_end_splits_like_the_whole_text(name, text):
    """The cut that mixed text is split at: between an ASCII letter and a space."""
    ends = [0, *(m.start() + 1 for m in regex.finditer("[A-Za-z](?= )", text)), len(text)]
    pieces = [text[start:end] for start, end in zip(ends, ends[1:])]
    assert [chunk for piece in pieces for chunk in whole_split(name, piece)] == whole_split(
        name, text)


@pytest.mark.parametrize("name", sorted(NAMED_PATTERNS))
def test_ascii_stretches_of_real_text_split_like_the_pattern(name):
    """The built-in corpus (mostly ASCII, with curly quotes, accents and dashes) as a whole,
    and with a non-ASCII character at every distance from a stretch's word ends."""
    pattern = SplitPattern.resolve(name)
    text = builtin_corpus()
    assert not text.isascii()
    assert pattern.split(text) == whole_split(name, text)
    plain = "".join(char for char in text[:20_000] if char.isascii())
    for offset in range(0, 3 * ASCII_STRETCH_MIN, 7):
        mixed = plain[:offset] + "é" + plain[offset : offset + 2 * ASCII_STRETCH_MIN] + "中"
        assert pattern.split(mixed) == whole_split(name, mixed), offset
