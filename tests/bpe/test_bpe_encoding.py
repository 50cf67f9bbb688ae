"""Encoding: round trips, the merge-by-rank paths, pathological inputs, special tokens."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe.encoding
from bpe import DisallowedSpecialTokenError, Tokenizer
from bpe.corpus import builtin_corpus
from bpe.encoding import _merge_long, _merge_short, encode_chunk, replace_surrogates

SPECIALS = ["<|endoftext|>", "<s>", "<s>x"]


@pytest.fixture(scope="module")
def tokenizer():
    # Runs of spaces and letters give tokens for long runs of one character.
    text = builtin_corpus()[:100_000] + "".join(
        " " * n + "a" * n + "\n" for n in range(1, 70)
    )
    return Tokenizer.train(text, vocab_size=1500, special_tokens=SPECIALS)


@settings(max_examples=80, deadline=None)
@given(text=st.text())
def test_round_trip_of_arbitrary_unicode(tokenizer, text):
    ids = tokenizer.encode_ordinary(text)
    assert tokenizer.decode(ids, errors="strict") == text
    assert tokenizer.decode_bytes(ids) == text.encode("utf-8")


@settings(max_examples=40, deadline=None)
@given(text=st.lists(st.sampled_from(
    ["a", "é", "中", "😀", "\u0301", "\r\n", "\r", "\n", " ", "\ud800", "\udfff", "\ud83d\ude00"]
)).map("".join))
def test_surrogates_become_what_utf16_replacement_makes_of_them(tokenizer, text):
    """Lone surrogates turn into U+FFFD, pairs into their character (tiktoken's choice)."""
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids, errors="strict") == replace_surrogates(text)
    if "\ud83d\ude00" in text:
        assert "😀" in tokenizer.decode(ids)


def test_surrogate_handling_examples(tokenizer):
    assert tokenizer.decode(tokenizer.encode("a\ud800b")) == "a\ufffdb"
    assert tokenizer.decode(tokenizer.encode("\ud83d\ude00")) == "😀"


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_decode_like_python(tokenizer, data):
    ids = [tokenizer.mergeable_ranks[bytes([byte])] for byte in data]
    assert tokenizer.decode_bytes(ids) == data
    assert tokenizer.decode(ids) == data.decode("utf-8", errors="replace")
    text = data.decode("utf-8", errors="replace")
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200) | st.text(alphabet="a b", max_size=400).map(str.encode))
def test_short_and_long_merge_paths_agree_with_tiktoken(tokenizer, data):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = tokenizer.mergeable_ranks
    reference = tiktoken.Encoding("ref", pat_str=r"\s+", mergeable_ranks=ranks, special_tokens={})
    expected = reference._encode_single_piece(data) if data else []
    assert encode_chunk(data, ranks) == expected
    assert _merge_short(data, ranks) == expected or data in ranks
    assert _merge_long(data, ranks) == expected or data in ranks


@settings(max_examples=80, deadline=None)
@given(
    tokens=st.lists(st.text("abc", min_size=2, max_size=6), max_size=40, unique=True),
    text=st.text("abc", max_size=300),
)
def test_merge_paths_agree_with_tiktoken_for_arbitrary_rank_orders(tokens, text):
    """Ranks in random order, so merges can form pairs of lower rank than the one merged."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([byte]): byte for byte in range(256)}
    for token in tokens:
        ranks[token.encode()] = len(ranks)
    reference = tiktoken.Encoding("ref", pat_str=r"\s+", mergeable_ranks=ranks, special_tokens={})
    data = text.encode()
    expected = reference._encode_single_piece(data) if data else []
    assert encode_chunk(data, ranks) == expected
    if data not in ranks:  # a whole-chunk token is found before merging (tiktoken's rule)
        assert _merge_short(data, ranks) == expected
        assert _merge_long(data, ranks) == expected


@pytest.mark.parametrize("character", ["a", " "])
def test_a_megabyte_of_one_character_encodes_to_long_tokens(tokenizer, character):
    # Its speed is the `long-chunk` case of `python -m benchmarks bpe`, not a timed test.
    text = character * 1_000_000
    ids = tokenizer.encode(text)
    assert len(ids) <= len(text) // 8  # long tokens of the character were used
    assert tokenizer.decode(ids) == text


def test_long_chunks_match_tiktoken_and_are_not_cached(tokenizer):
    tiktoken = pytest.importorskip("tiktoken")
    text = "a" * 5000 + " " + "ab" * 3000
    reference = tiktoken.Encoding("ref", pat_str=tokenizer.pattern.source,
                                  mergeable_ranks=tokenizer.mergeable_ranks, special_tokens={})
    assert tokenizer.encode(text) == reference.encode(text)
    cache = tokenizer._encoder._cache
    assert all(len(chunk) <= bpe.encoding.CACHE_MAX_CHUNK_CHARS for chunk in cache)


def test_chunk_cache_is_bounded(tokenizer, monkeypatch):
    monkeypatch.setattr(bpe.encoding, "CACHE_MAX_ENTRIES", 50)
    words = " ".join(f"w{i}" for i in range(300))
    first = tokenizer.encode(words)
    assert tokenizer.encode(words) == first
    tokenizer.encode("x y z")
    assert len(tokenizer._encoder._cache) <= 50 + 3
    assert tokenizer.decode(first) == words


def test_disallowed_special_token_raises_by_default(tokenizer):
    with pytest.raises(DisallowedSpecialTokenError, match="<\\|endoftext\\|>") as info:
        tokenizer.encode("hello <|endoftext|> world")
    assert isinstance(info.value, ValueError)
    assert info.value.token == "<|endoftext|>"


def test_allowed_special_tokens_become_their_ids(tokenizer):
    eot = tokenizer.eot
    assert eot == tokenizer.special_token_id("<|endoftext|>")
    ids = tokenizer.encode("hi<|endoftext|>there", allowed_special={"<|endoftext|>"})
    assert eot in ids
    assert ids == tokenizer.encode("hi") + [eot] + tokenizer.encode("there")
    assert tokenizer.encode("hi<|endoftext|>", allowed_special="all") == [*tokenizer.encode("hi"),
                                                                         eot]


def test_disallowing_nothing_encodes_special_tokens_as_text(tokenizer):
    text = "a<|endoftext|>b<s>"
    ids = tokenizer.encode(text, disallowed_special=())
    assert ids == tokenizer.encode_ordinary(text)
    assert not set(ids) & set(tokenizer.special_tokens.values())
    assert tokenizer.decode(ids) == text


def test_special_tokens_match_longest_first(tokenizer):
    s_id, sx_id = tokenizer.special_token_id("<s>"), tokenizer.special_token_id("<s>x")
    assert tokenizer.encode("<s>x<s>", allowed_special="all") == [sx_id, s_id]
    # Only "<s>" allowed: "<s>x" is disallowed by default, so the text is refused ...
    with pytest.raises(DisallowedSpecialTokenError, match="<s>x"):
        tokenizer.encode("<s>x", allowed_special={"<s>"})
    # ... unless nothing is disallowed; then "<s>" is the special and "x" is text.
    ids = tokenizer.encode("<s>x", allowed_special={"<s>"}, disallowed_special=())
    assert ids == [s_id, *tokenizer.encode_ordinary("x")]


def test_explicit_disallowed_set_only_checks_those(tokenizer):
    ids = tokenizer.encode("<s> and <|endoftext|>", disallowed_special={"<s>"} - {"<s>"})
    assert tokenizer.decode(ids) == "<s> and <|endoftext|>"
    with pytest.raises(DisallowedSpecialTokenError):
        tokenizer.encode("<s>", disallowed_special={"<s>"})


def test_allowed_tokens_the_vocabulary_lacks_are_ignored_as_in_tiktoken(tokenizer):
    text = "a<|endoftext|>b<|im_start|>"
    ids = tokenizer.encode(text, allowed_special={"<|endoftext|>", "<|im_start|>"})
    assert ids == [*tokenizer.encode_ordinary("a"), tokenizer.eot,
                   *tokenizer.encode_ordinary("b<|im_start|>")]
    assert tokenizer.encode_batch([text], allowed_special={"<|im_start|>"},
                                  disallowed_special=()) == [tokenizer.encode_ordinary(text)]


def test_disallowed_strings_are_refused_even_when_the_vocabulary_lacks_them(tokenizer):
    with pytest.raises(DisallowedSpecialTokenError, match="<|im_start|>"):
        tokenizer.encode("x<|im_start|>", disallowed_special=["<|im_start|>"])
    with pytest.raises(DisallowedSpecialTokenError, match="<|im_start|>"):
        tokenizer.encode_batch(["x<|im_start|>"], allowed_special="all",
                               disallowed_special={"<|im_start|>"})
    assert tokenizer.encode("x", disallowed_special={"<|im_start|>"}) == tokenizer.encode("x")


def test_disallowed_special_none_refuses_nothing_as_in_tiktoken(tokenizer):
    text = "a <s> b"  # tiktoken reads None as no disallowed tokens at all
    assert tokenizer.encode(text, disallowed_special=None) == tokenizer.encode(
        text, disallowed_special=())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allowed_special": "<s>"}, "allowed_special must be 'all' or a set"),
        ({"allowed_special": ["<s>"]}, "allowed_special must be 'all' or a set"),
        ({"allowed_special": ("<s>",), "disallowed_special": ()}, "got tuple"),
        ({"allowed_special": None}, "allowed_special must be 'all' or a set"),
        ({"disallowed_special": "<s>"}, "disallowed_special must be 'all' or a collection"),
        ({"disallowed_special": {""}}, "must hold non-empty str"),
    ],
)
def test_bad_special_token_options_are_type_errors(tokenizer, options, message):
    with pytest.raises(TypeError, match=message):
        tokenizer.encode("text", **options)
    with pytest.raises(TypeError, match=message):
        tokenizer.encode_batch(["text"], **options)


def test_special_token_lookup_errors_name_the_known_tokens(tokenizer):
    with pytest.raises(ValueError, match="<unk>.*is not a special token.*<s>x"):
        tokenizer.special_token_id("<unk>")


def test_eot_is_none_without_endoftext():
    assert Tokenizer.train("plain text", vocab_size=260).eot is None


def test_encode_requires_str(tokenizer):
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        tokenizer.encode(b"bytes")
    with pytest.raises(TypeError, match="text must be a str"):
        tokenizer.encode_ordinary(None)


def test_empty_text_encodes_to_nothing(tokenizer):
    assert tokenizer.encode("") == []
    assert tokenizer.decode([]) == ""


@pytest.mark.parametrize("pattern", ["o200k", r"\S+|\s+"])
def test_encode_file_streams_pieces_that_join_to_encode(pattern, tmp_path, monkeypatch):
    import bpe.training

    monkeypatch.setattr(bpe.training, "PIECE_CHARS", 50)  # blocks of 50 characters
    ranks = {bytes([byte]): byte for byte in range(256)} | {b";\n//": 256, b"ab": 257}
    tokenizer = Tokenizer(ranks, pattern=pattern,
                          special_tokens={"<s>": 258, "<a\nb>": 259})
    text = "".join(f"x{n};\n//ab\n<s>\n<a\nb>\nab\r\n" for n in range(40))
    path = tmp_path / "text.txt"
    path.write_bytes(text.encode())
    pieces = list(tokenizer.encode_file(path, allowed_special="all"))
    assert len(pieces) > 1 if pattern == "o200k" else len(pieces) == 1
    assert [int(i) for piece in pieces for i in piece] == tokenizer.encode(
        text, allowed_special="all")
    with pytest.raises(DisallowedSpecialTokenError, match="<s>"):
        list(tokenizer.encode_file(path))
    with pytest.raises(DisallowedSpecialTokenError, match="<a"):
        list(tokenizer.encode_file(path, allowed_special={"<s>"}))
    ordinary = list(tokenizer.encode_file(path, disallowed_special=()))
    assert [int(i) for piece in ordinary for i in piece] == tokenizer.encode_ordinary(text)
