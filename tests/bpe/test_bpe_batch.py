"""Batch encoding: in worker processes, cut only where the ids cannot change; NumPy output."""

import numpy as np
import pytest

import bpe.encoding
from bpe import DisallowedSpecialTokenError, Tokenizer, id_dtype
from bpe.corpus import builtin_corpus

SPECIALS = ["<|endoftext|>", "<|a\nb|>"]


@pytest.fixture(scope="module", params=["gpt2", "cl100k", "o200k"])
def tokenizer(request):
    return Tokenizer.train(builtin_corpus()[:60_000], vocab_size=700, pattern=request.param,
                           special_tokens=SPECIALS)


@pytest.fixture
def small_pieces(monkeypatch):
    """Make small inputs go to worker processes, cut into many pieces."""
    monkeypatch.setattr(bpe.encoding, "PARALLEL_MIN_CHARS", 0)
    monkeypatch.setattr(bpe.encoding, "PARALLEL_PIECE_CHARS", 2_000)


def test_workers_give_the_same_ids_as_encoding_each_text(tokenizer, small_pieces):
    corpus = builtin_corpus()
    texts = [corpus[:40_000], "", "short", corpus[100_000:130_000].replace("\n", "\r\n")]
    expected = [tokenizer.encode(text) for text in texts]
    assert tokenizer.encode_batch(texts, num_workers=2) == expected
    arrays = tokenizer.encode_batch(texts, num_workers=2, as_numpy=True)
    assert [array.tolist() for array in arrays] == expected
    assert all(array.dtype == np.uint16 for array in arrays)


def test_workers_do_not_cut_before_a_slash_after_punctuation(small_pieces):
    # o200k's pattern makes ";\n//" one chunk, here one token; a cut after the newline
    # would encode it as ";", "\n", "/", "/".
    ranks = {bytes([byte]): byte for byte in range(256)} | {b";\n//": 256}
    tokenizer = Tokenizer(ranks, pattern="o200k")
    text = "x " * 1_000 + "x;\n//" + "x " * 1_000
    texts = [text, ("a;\n//b\n" * 400) + text]
    expected = [tokenizer.encode(text) for text in texts]
    assert expected[0].count(256) == 1 and expected[1].count(256) == 401
    assert tokenizer.encode_batch(texts, num_workers=2) == expected


def test_no_cut_inside_an_allowed_special_token(tokenizer, small_pieces):
    # "<|a\nb|>" holds a newline between two non-space characters, a safe cut for the
    # pattern; placed at every position around the piece size, a cut would split it.
    filler = builtin_corpus()[:4_000]
    texts = [filler[:n] + "<|a\nb|>" + filler[n:] for n in range(1_990, 2_000)]
    expected = [tokenizer.encode(text, allowed_special="all") for text in texts]
    special = tokenizer.special_token_id("<|a\nb|>")
    assert all(special in ids for ids in expected)
    assert tokenizer.encode_batch(texts, allowed_special="all", num_workers=2) == expected


def test_serial_path_and_numpy_output(tokenizer):
    texts = ["one text", "another <|endoftext|>"]
    batch = tokenizer.encode_batch(texts, allowed_special={"<|endoftext|>"}, num_workers=1)
    assert batch == [tokenizer.encode(text, allowed_special="all") for text in texts]
    arrays = tokenizer.encode_batch(texts, allowed_special="all", as_numpy=True)
    assert [array.tolist() for array in arrays] == batch
    assert arrays[0].dtype == id_dtype(tokenizer.vocab_size) == np.uint16


def test_disallowed_special_tokens_are_checked_before_any_work(tokenizer, small_pieces):
    with pytest.raises(DisallowedSpecialTokenError):
        tokenizer.encode_batch(["fine", "not <|endoftext|> fine"], num_workers=2)


def test_custom_patterns_are_encoded_whole_in_workers(small_pieces):
    tokenizer = Tokenizer.train(builtin_corpus()[:20_000], vocab_size=400, pattern=r"\S+|\s+")
    texts = [builtin_corpus()[:10_000], builtin_corpus()[10_000:15_000]]
    assert tokenizer.encode_batch(texts, num_workers=2) == [tokenizer.encode(t) for t in texts]


@pytest.mark.parametrize(("vocab_size", "dtype"), [
    (2, np.uint8), (256, np.uint8), (257, np.uint16), (65_536, np.uint16), (65_537, np.uint32),
    (2**32, np.uint32), (2**32 + 1, np.uint64),
])
def test_id_dtype_is_the_smallest_that_fits(vocab_size, dtype):
    assert id_dtype(vocab_size) == dtype


def test_bad_worker_count_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match="num_workers must be a positive int"):
        tokenizer.encode_batch(["x"], num_workers=0)


def test_batch_requires_strings(tokenizer):
    with pytest.raises(TypeError, match="text must be a str"):
        tokenizer.encode_batch(["ok", 3])


def test_tokenizers_pickle_without_their_cache(tokenizer):
    """Worker processes started by spawn receive the tokenizer pickled."""
    import pickle

    tokenizer.encode("warm the cache")
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy._encoder._cache == {}
    assert copy.encode("warm the cache") == tokenizer.encode("warm the cache")
    assert copy.special_tokens == tokenizer.special_tokens


def test_arrays_hold_special_ids_beyond_unicode_and_text_with_surrogates(small_pieces):
    """Workers send arrays made from the ids as code points; a special id too large to be
    one, and a lone surrogate (encoded as U+FFFD), take the other ways."""
    ranks = {bytes([byte]): byte for byte in range(256)} | {b"ab": 256}
    tokenizer = Tokenizer(ranks, pattern="cl100k", special_tokens={"<|big|>": 5_000_000})
    texts = ["ab <|big|> ab\ud800 " * 300, "x\n" * 2_000 + "<|big|>"]
    expected = [tokenizer.encode(text, allowed_special="all") for text in texts]
    assert expected[0].count(5_000_000) == 300
    assert tokenizer.decode(expected[0][:6]) == "ab <|big|> ab\ufffd"
    for workers in (1, 2):
        arrays = tokenizer.encode_batch(texts, allowed_special="all", num_workers=workers,
                                        as_numpy=True)
        assert [array.tolist() for array in arrays] == expected
        assert all(array.dtype == np.uint32 and array.flags.writeable for array in arrays)
