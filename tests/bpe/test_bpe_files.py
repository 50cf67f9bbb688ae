"""Files: our JSON format, tiktoken rank files, GPT-2's files, Hugging Face's tokenizer.json."""

import base64
import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
from bpe import CharTokenizer, Tokenizer
from bpe.corpus import builtin_corpus
from bpe.files import BYTES_IN_CHAR_ORDER, bytes_to_chars

SPECIALS = ["<|endoftext|>", "<|fim_prefix|>"]
SAMPLE = builtin_corpus()[300_000:340_000] + " 1234567 中文 😀 \r\n\r\n  x <|endoftext|>"


@pytest.fixture(scope="module", params=["gpt2", "cl100k", "o200k"])
def tokenizer(request):
    text = builtin_corpus()[:80_000] + " 1234567890 9876543 中文字 😀👍🏽" * 5
    return Tokenizer.train(text, vocab_size=1000, pattern=request.param, special_tokens=SPECIALS)


def hf_tokenizer(path):
    """Hugging Face's tokenizer read from ``path`` (the test skips without ``tokenizers``)."""
    return pytest.importorskip("tokenizers").Tokenizer.from_file(str(path))


def assert_same_encoding(first, second, text=SAMPLE):
    assert first.encode(text, allowed_special="all") == second.encode(text, allowed_special="all")


def test_json_round_trip_keeps_everything(tokenizer, tmp_path):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    loaded = bpe.load(path)
    assert isinstance(loaded, Tokenizer)
    assert loaded.pattern == tokenizer.pattern and loaded.pattern.name == tokenizer.pattern.name
    assert loaded.special_tokens == tokenizer.special_tokens
    assert loaded.merges == tokenizer.merges
    assert loaded.mergeable_ranks == tokenizer.mergeable_ranks
    assert_same_encoding(loaded, tokenizer)
    assert Tokenizer.load(path).vocab_size == tokenizer.vocab_size
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "bpe-tokenizer" and document["kind"] == "byte-bpe"
    assert document["pattern"]["regex"] == tokenizer.pattern.source


def test_json_round_trip_of_a_custom_pattern(tmp_path):
    tokenizer = Tokenizer.train("custom  pattern\ttext " * 30, vocab_size=280, pattern=r"\S+|\s+")
    tokenizer.save(tmp_path / "custom.json")
    loaded = bpe.load(tmp_path / "custom.json")
    assert loaded.pattern.name is None and loaded.pattern.source == r"\S+|\s+"
    assert loaded.encode("custom  text") == tokenizer.encode("custom  text")


@pytest.mark.parametrize("name", ["ranks.tiktoken", "ranks.tiktoken.gz"])
def test_tiktoken_files_round_trip(tokenizer, tmp_path, name):
    path = tmp_path / name
    tokenizer.save_tiktoken(path)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    else:
        # tiktoken's own loader reads what we wrote.
        tiktoken_load = pytest.importorskip("tiktoken.load")
        assert tiktoken_load.load_tiktoken_bpe(str(path)) == tokenizer.mergeable_ranks
    loaded = Tokenizer.from_tiktoken(path, pattern=tokenizer.pattern.name,
                                     special_tokens=tokenizer.special_tokens)
    assert loaded.mergeable_ranks == tokenizer.mergeable_ranks
    assert loaded.merges == []  # a rank file has no merge list, and needs none:
    assert_same_encoding(loaded, tokenizer)


def test_tiktoken_gzip_is_detected_by_content(tokenizer, tmp_path):
    plain = tmp_path / "plain.tiktoken"
    tokenizer.save_tiktoken(plain)
    disguised = tmp_path / "disguised.tiktoken"
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    loaded = Tokenizer.from_tiktoken(disguised, pattern=tokenizer.pattern)
    assert loaded.mergeable_ranks == tokenizer.mergeable_ranks


def test_malformed_tiktoken_line_names_the_line(tmp_path):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(ValueError, match="line 2"):
        Tokenizer.from_tiktoken(path, pattern="gpt2")


@pytest.mark.parametrize(("lines", "message"), [
    ([], "lack 256 single bytes"),  # an empty file
    ([b"YWI= 5"], "distinct id"),  # "ab" takes the rank of byte 5
    ([b"YWI= -3"], "ids in 0"),
])
def test_tiktoken_files_with_bad_ranks_are_errors_that_name_the_file(tmp_path, lines, message):
    path = tmp_path / "bad.tiktoken"
    every_byte = [base64.b64encode(bytes([byte])) + b" %d" % byte for byte in range(256)]
    path.write_bytes(b"\n".join((every_byte if lines else []) + lines))
    with pytest.raises(ValueError, match=f"bad.tiktoken'.*{message}"):
        Tokenizer.from_tiktoken(path, pattern="gpt2")


def write_gpt2_files(tokenizer, directory, special_tokens):
    """encoder.json and vocab.bpe as GPT-2 lays them out: bytes first in alphabet order."""
    token_bytes = {token: data for data, token in tokenizer.mergeable_ranks.items()}
    gpt2_id = {byte: index for index, byte in enumerate(BYTES_IN_CHAR_ORDER)}
    encoder = {bytes_to_chars(bytes([byte])): gpt2_id[byte] for byte in range(256)}
    lines = ["#version: 0.2"]
    for k, (left, right) in enumerate(tokenizer.merges):
        lines.append(f"{bytes_to_chars(token_bytes[left])} {bytes_to_chars(token_bytes[right])}")
        encoder[bytes_to_chars(token_bytes[256 + k])] = 256 + k
    for token in special_tokens:
        encoder[token] = tokenizer.special_token_id(token)
    (directory / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    (directory / "vocab.bpe").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory / "encoder.json", directory / "vocab.bpe"


def test_gpt2_files_load(tokenizer, tmp_path):
    encoder_json, vocab_bpe = write_gpt2_files(tokenizer, tmp_path, SPECIALS)
    loaded = Tokenizer.from_gpt2(encoder_json, vocab_bpe, pattern=tokenizer.pattern)
    assert loaded.special_tokens == tokenizer.special_tokens
    assert len(loaded.merges) == len(tokenizer.merges)
    # tiktoken's GPT-2 reader (which knows only GPT-2's special tokens) agrees on the ranks.
    tiktoken_load = pytest.importorskip("tiktoken.load")
    (tmp_path / "gpt2").mkdir()
    files = write_gpt2_files(tokenizer, tmp_path / "gpt2", ["<|endoftext|>"])
    tiktoken_ranks = tiktoken_load.data_gym_to_mergeable_bpe_ranks(*map(str, reversed(files)))
    assert tiktoken_ranks == loaded.mergeable_ranks
    # Byte tokens have other ids in GPT-2's layout; the token bytes are the same.
    ours = tokenizer.encode(SAMPLE, allowed_special="all")
    theirs = loaded.encode(SAMPLE, allowed_special="all")
    assert [tokenizer.decode_single_token_bytes(t) for t in ours] == [
        loaded.decode_single_token_bytes(t) for t in theirs]


def test_bad_gpt2_merge_line_is_an_error(tmp_path):
    (tmp_path / "encoder.json").write_text(json.dumps({"a": 0}), encoding="utf-8")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\na b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2 is not a merge"):
        Tokenizer.from_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")


def test_huggingface_export_loads_and_encodes_identically(tokenizer, tmp_path):
    path = tmp_path / "tokenizer.json"
    tokenizer.save_huggingface(path)
    theirs = hf_tokenizer(path)
    text = builtin_corpus()[:100_000]
    ids = tokenizer.encode(text, allowed_special="all")
    assert theirs.encode(text).ids == ids
    assert theirs.decode(ids, skip_special_tokens=False) == text
    assert theirs.encode(SAMPLE).ids == tokenizer.encode(SAMPLE, allowed_special="all")
    assert theirs.get_vocab_size() == tokenizer.vocab_size


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=100))
def test_huggingface_export_on_generated_text(tokenizer, tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / f"hf-{tokenizer.pattern.name}.json"
    if not path.exists():
        tokenizer.save_huggingface(path)
    theirs = hf_tokenizer(path)
    assert theirs.encode(text).ids == tokenizer.encode(text, disallowed_special=())


def test_rank_only_vocabulary_encodes_like_the_trained_one(tokenizer):
    rank_only = Tokenizer(tokenizer.mergeable_ranks, pattern=tokenizer.pattern)
    assert rank_only.merges == []
    assert rank_only.encode_ordinary(SAMPLE) == tokenizer.encode_ordinary(SAMPLE)


def test_char_tokenizer_round_trips_through_load(tmp_path):
    char = CharTokenizer.from_text("hello, world\n")
    char.save(tmp_path / "char.json")
    loaded = bpe.load(tmp_path / "char.json")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.chars == char.chars
    assert CharTokenizer.load(tmp_path / "char.json").encode("hello") == char.encode("hello")
    with pytest.raises(ValueError, match="holds a 'char' tokenizer"):
        Tokenizer.load(tmp_path / "char.json")


def test_loading_a_bpe_file_as_char_tokenizer_is_an_error(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "bpe.json")
    with pytest.raises(ValueError, match="holds a 'byte-bpe' tokenizer"):
        CharTokenizer.load(tmp_path / "bpe.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a JSON tokenizer file"),
        ('{"format": "other"}', "is not a 'bpe-tokenizer' file"),
        ('{"format": "bpe-tokenizer", "version": 99, "kind": "char"}', "format version 99"),
        ('{"format": "bpe-tokenizer", "version": 1, "kind": "wordpiece"}', "unknown kind"),
        ('{"format": "bpe-tokenizer", "version": 1, "kind": "byte-bpe"}', "malformed byte-bpe"),
        ('{"format": "bpe-tokenizer", "version": 1, "kind": "char"}', "malformed char"),
    ],
)
def test_bad_tokenizer_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        bpe.load(path)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        bpe.load(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("ranks", "options", "message"),
    [
        ({b"a": 0}, {}, "lack 255 single bytes"),
        ({bytes([b]): b for b in range(256)} | {b"ab": 5}, {}, "distinct id"),
        ({bytes([b]): b for b in range(256)} | {"ab": 256}, {}, "non-empty bytes"),
        ({bytes([b]): b for b in range(256)}, {"special_tokens": {"<s>": 3}}, "reuses id 3"),
        ({bytes([b]): b for b in range(256)}, {"merges": [(97, 98)]}, "which is no token"),
        ({bytes([b]): b for b in range(256)}, {"merges": [(97,)]}, "pair of token ids"),
    ],
)
def test_invalid_vocabularies_are_clear_errors(ranks, options, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer(ranks, **options)
