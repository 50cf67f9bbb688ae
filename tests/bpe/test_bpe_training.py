"""Training: invariants, tie-breaking, parity with Hugging Face's trainer, inputs and errors."""

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe.training
from bpe import SplitPattern, Tokenizer
from bpe.corpus import builtin_corpus
from bpe.files import bytes_to_chars
from bpe.special_tokens import SpecialTokens
from bpe.training import count_chunks, read_files

# Text for the Hugging Face comparison: letters, digits, punctuation, contractions, several
# kinds of whitespace, and multi-byte characters whose Unicode classes both engines agree on.
HF_TEXTS = st.lists(
    st.text(
        alphabet=st.sampled_from(list("aabbcde  ABZ019.,!'s\n\t\r") + ["é", "ß", "中", "😀"]),
        min_size=1,
        max_size=60,
    ),
    min_size=1,
    max_size=25,
)


def hf_merges(texts, vocab_size, special_tokens=()):
    """The merges of Hugging Face's byte-level BpeTrainer, as pairs of GPT-2-alphabet strings."""
    tokenizers = pytest.importorskip("tokenizers")
    pre_tokenizers = tokenizers.pre_tokenizers
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(special_tokens),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return [tuple(pair) for pair in json.loads(tokenizer.to_str())["model"]["merges"]]


def merges_as_strings(tokenizer):
    token_bytes = {token: data for data, token in tokenizer.mergeable_ranks.items()}
    return [(bytes_to_chars(token_bytes[a]), bytes_to_chars(token_bytes[b]))
            for a, b in tokenizer.merges]


@settings(max_examples=30, deadline=None)
@given(texts=HF_TEXTS, extra=st.integers(1, 120))
def test_huggingface_tie_break_reproduces_bpe_trainer_merges(texts, extra):
    vocab_size = 256 + extra
    ours = Tokenizer.train(texts, vocab_size=vocab_size, tie_break="huggingface", num_workers=1)
    assert merges_as_strings(ours) == hf_merges(texts, vocab_size)


def test_huggingface_parity_on_the_builtin_corpus_with_special_tokens():
    lines = builtin_corpus()[:150_000].splitlines(keepends=True)
    specials = ["<|endoftext|>", "<|pad|>"]
    ours = Tokenizer.train(lines, vocab_size=1500, special_tokens=specials, num_workers=1)
    theirs = hf_merges(lines, 1500, specials)
    assert len(theirs) == 1500 - 256 - 2
    assert merges_as_strings(ours) == theirs


def test_tie_break_modes_order_single_bytes_differently():
    # (" ", "a") and ("b", "a") both occur once. By byte value the space comes first; in the
    # GPT-2 alphabet the space is "Ġ" (U+0120), after every printable byte.
    texts = [" a", "ba"]
    by_value = Tokenizer.train(texts, vocab_size=257, tie_break="byte-value")
    hugging = Tokenizer.train(texts, vocab_size=257, tie_break="huggingface")
    assert by_value.merges == [(ord(" "), ord("a"))]
    assert hugging.merges == [(ord("b"), ord("a"))]
    assert hf_merges(texts, 257) == [("b", "a")]


TRAINING_TEXTS = st.lists(st.text(max_size=80), min_size=1, max_size=10)


@settings(max_examples=30, deadline=None)
@given(texts=TRAINING_TEXTS, extra=st.integers(1, 80), specials=st.integers(0, 3))
def test_training_invariants(texts, extra, specials):
    special_tokens = [f"<|special{i}|>" for i in range(specials)]
    vocab_size = 256 + specials + extra
    if not any(texts):
        with pytest.raises(ValueError, match="empty"):
            Tokenizer.train(texts, vocab_size=vocab_size, special_tokens=special_tokens)
        return
    tokenizer = Tokenizer.train(texts, vocab_size=vocab_size, special_tokens=special_tokens)
    ranks = tokenizer.mergeable_ranks
    token_bytes = {token: data for data, token in ranks.items()}
    # Merges are in rank order: merge k made token 256 + k out of two older tokens.
    for k, (left, right) in enumerate(tokenizer.merges):
        assert ranks[token_bytes[left] + token_bytes[right]] == 256 + k
        assert left < 256 + k and right < 256 + k
    assert sorted(ranks.values()) == list(range(256 + len(tokenizer.merges)))
    # Special tokens take the ids after the merges and are never part of a merge.
    assert list(tokenizer.special_tokens.values()) == [
        len(ranks) + i for i in range(len(special_tokens))
    ]
    merged_ids = {token for pair in tokenizer.merges for token in pair}
    assert merged_ids.isdisjoint(tokenizer.special_tokens.values())
    # The vocabulary is full, or training stopped because every chunk is one token.
    if tokenizer.vocab_size < vocab_size:
        chunks = {chunk for text in texts for chunk in tokenizer.pattern.split(text)}
        assert all(len(tokenizer.encode_ordinary(chunk)) <= 1 for chunk in chunks)
    else:
        assert tokenizer.vocab_size == vocab_size


def test_special_tokens_in_the_training_text_are_never_merged():
    text = "hello<|endoftext|>world<|endoftext|>" * 50
    tokenizer = Tokenizer.train(text, vocab_size=400, special_tokens=["<|endoftext|>"])
    assert not any(b"|" in data or b"<" in data for data in tokenizer.mergeable_ranks
                   if len(data) > 1)
    assert b"hello" in tokenizer.mergeable_ranks and b"world" in tokenizer.mergeable_ranks
    assert tokenizer.eot == tokenizer.vocab_size - 1


def test_min_frequency_stops_training_early():
    # Pairs: (a, b) occurs 3 times; every other pair at most twice.
    tokenizer = Tokenizer.train("ab ab ab cd cd", vocab_size=1000, min_frequency=3)
    assert tokenizer.merges == [(ord("a"), ord("b"))]
    assert tokenizer.vocab_size == 257


def test_training_stops_when_no_pair_is_left():
    tokenizer = Tokenizer.train("abc", vocab_size=1000)
    assert tokenizer.vocab_size == 258
    assert tokenizer.encode("abc") == [257]


def test_counts_never_overflow():
    counts = Counter({"ab": 2**70, "ba": 2**70 - 1, "cd": 5})
    from bpe.training import learn_merges

    learned = learn_merges(counts, num_tokens=258)
    assert learned.merges == [(ord("a"), ord("b")), (ord("b"), ord("a"))]


def test_training_from_files_keeps_line_endings_and_equals_training_from_strings(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(bpe.training, "PIECE_CHARS", 500)
    corpus = builtin_corpus()[:20_000]
    first = tmp_path / "first.txt"
    second = tmp_path / "second.txt"
    first.write_bytes(corpus[:12_000].encode())
    second.write_bytes(corpus[12_000:].replace("\n", "\r\n").encode())
    from_files = Tokenizer.train_from_files([first, second], vocab_size=600, num_workers=1)
    texts = [corpus[:12_000], corpus[12_000:].replace("\n", "\r\n")]
    from_strings = Tokenizer.train(texts, vocab_size=600, num_workers=1)
    assert from_files.merges == from_strings.merges
    assert b"\r\n" in from_files.mergeable_ranks


@settings(max_examples=40, deadline=None)
@given(
    text=st.lists(st.sampled_from(list("ab .\n\n\r") + ["<s>", "é"]), max_size=200).map("".join),
    block=st.integers(1, 30),
)
def test_reading_files_in_blocks_counts_like_the_whole_text(tmp_path_factory, text, block):
    path = tmp_path_factory.mktemp("blocks") / "text.txt"
    path.write_bytes(text.encode())
    pattern = SplitPattern.resolve("gpt2")
    specials = SpecialTokens({"<s>": 0})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe.training, "PIECE_CHARS", block)
        pieces = list(read_files([path], pattern, specials))
        counts = count_chunks(pieces, pattern, special_tokens=specials, num_workers=1)
    assert "".join(pieces) == text
    expected = Counter(chunk for part in text.split("<s>") for chunk in pattern.split(part))
    assert counts == expected


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 13])
def test_o200k_file_blocks_are_not_cut_before_a_slash_after_punctuation(tmp_path, block):
    # o200k's punctuation chunks run on through a newline into "/" (";\n//").
    text = "x;\n//y\nint a;\n/* c */\nb\n" * 10
    path = tmp_path / "code.c"
    path.write_bytes(text.encode())
    pattern = SplitPattern.resolve("o200k")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe.training, "PIECE_CHARS", block)
        pieces = list(read_files([path], pattern))
        in_memory = count_chunks([text], pattern, num_workers=1)
    assert len(pieces) > 1
    assert count_chunks(pieces, pattern, num_workers=1) == Counter(pattern.split(text))
    assert in_memory == Counter(pattern.split(text))
    assert in_memory[";\n//"] == 10


@pytest.mark.parametrize("block", range(8, 20))
def test_no_cut_inside_a_special_token_that_ends_in_the_next_block(tmp_path, block):
    text = "".join(f"y{n}\n<a\nb>\nz\n" for n in range(30))
    path = tmp_path / "text.txt"
    path.write_bytes(text.encode())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe.training, "PIECE_CHARS", block)
        specials = SpecialTokens({"<a\nb>": 0})
        pieces = list(read_files([path], SplitPattern.resolve("gpt2"), specials))
    assert "".join(pieces) == text and len(pieces) > 1
    assert sum(piece.count("<a\nb>") for piece in pieces) == 30


@pytest.mark.parametrize("block", range(1, 12))
def test_no_cut_inside_a_special_token_that_overlaps_another_occurrence(tmp_path, block):
    # "a\na" overlaps itself: the text holds it at 0, 4, 8, ..., but a scan that starts
    # inside one (a block's context) finds it at 2, 6, ... and would allow a cut at 6.
    text = "a\na\n" * 12 + "a"
    path = tmp_path / "text.txt"
    path.write_bytes(text.encode())
    specials = SpecialTokens({"a\na": 0})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe.training, "PIECE_CHARS", block)
        pieces = list(read_files([path], SplitPattern.resolve("gpt2"), specials))
    assert "".join(pieces) == text
    assert [part for piece in pieces for part in specials.split(piece)] == specials.split(text)


def test_no_special_tokens_leave_every_cut_allowed_without_a_scan():
    """With no tokens to avoid there is no test of positions at all (an empty alternation
    would match at every character: a span per character of every block read)."""
    assert SpecialTokens({}).within("a\nb\n" * 1000, frozenset()) is None
    assert SpecialTokens({"<s>": 0}).within("a\nb\n" * 1000, frozenset({"<s>"})) is None
    inside = SpecialTokens({"<s>": 0}).within("a<s>b", frozenset({"<s>"}))
    assert [inside(position) for position in range(6)] == [False, False, True, True, False,
                                                           False]


def test_file_blocks_are_never_cut_inside_a_special_token(tmp_path, monkeypatch):
    # "<|a\nb|>" contains a place where the pattern allows a cut; blocks end all around it.
    monkeypatch.setattr(bpe.training, "PIECE_CHARS", 64)
    corpus = builtin_corpus()[:5_000]
    text = "".join(corpus[i : i + 61] + "<|a\nb|>" for i in range(0, len(corpus), 61))
    path = tmp_path / "specials.txt"
    path.write_text(text, encoding="utf-8")
    options = {"vocab_size": 400, "special_tokens": ["<|a\nb|>"], "num_workers": 1}
    from_file = Tokenizer.train_from_files([path], **options)
    assert from_file.merges == Tokenizer.train(text, **options).merges
    assert not any(b"<|" in data for data in from_file.mergeable_ranks)


@pytest.mark.parametrize("name", ["gpt2", "cl100k", r"\S+|\s+"])
def test_counting_in_workers_equals_counting_in_process(name, monkeypatch):
    monkeypatch.setattr(bpe.training, "PIECE_CHARS", 20_000)
    pattern = SplitPattern.resolve(name)
    texts = [builtin_corpus()[:120_000], "short text", ""]
    expected = Counter(chunk for text in texts for chunk in pattern.split(text))
    assert count_chunks(texts, pattern, num_workers=2) == expected
    assert count_chunks(texts, pattern, num_workers=1) == expected


def test_progress_reports_counting_and_merging():
    events = []
    Tokenizer.train(builtin_corpus()[:30_000], vocab_size=500,
                    progress=lambda stage, done, total: events.append((stage, done, total)))
    assert events[0][0] == "count" and events[0][1] == 30_000
    merges = [event for event in events if event[0] == "merge"]
    assert merges[-1] == ("merge", 244, 244)
    assert len(merges) > 10


def test_progress_true_prints_to_stderr(capsys):
    Tokenizer.train("some text to learn from " * 20, vocab_size=270, progress=True)
    assert "[bpe] merge: 14/14 merges" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"vocab_size": 256}, ValueError, "vocab_size must be above 256"),
        ({"vocab_size": 258, "special_tokens": ["<a>", "<b>"]}, ValueError, "at least 259"),
        ({"vocab_size": 2**21}, ValueError, "at most"),
        ({"vocab_size": "1000"}, TypeError, "vocab_size must be an int"),
        ({"vocab_size": 300, "pattern": "([a-z]"}, ValueError, "does not compile"),
        ({"vocab_size": 300, "tie_break": "random"}, ValueError, "tie_break must be one of"),
        ({"vocab_size": 300, "min_frequency": -1}, ValueError, "min_frequency must be >= 0"),
        ({"vocab_size": 300, "special_tokens": "<a>"}, TypeError, "special_tokens must be"),
        ({"vocab_size": 300, "special_tokens": ["<a>", "<a>"]}, ValueError, "duplicates"),
        ({"vocab_size": 300, "special_tokens": [""]}, ValueError, "non-empty str"),
        ({"vocab_size": 300, "num_workers": 0}, ValueError, "num_workers must be"),
        ({"vocab_size": 300, "progress": "yes"}, TypeError, "progress must be"),
    ],
)
def test_bad_training_options_are_clear_errors(options, error, message):
    with pytest.raises(error, match=message):
        Tokenizer.train(["some text"], **options)


@pytest.mark.parametrize("texts", [[], [""], "", ["", ""]])
def test_empty_corpus_is_an_error(texts):
    with pytest.raises(ValueError, match="corpus is empty"):
        Tokenizer.train(texts, vocab_size=300)


def test_a_corpus_of_only_special_tokens_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="no text but the special tokens to learn from"):
        Tokenizer.train(["<s><s>", "<s>"], vocab_size=300, special_tokens=["<s>"])


def test_non_string_training_text_is_an_error():
    with pytest.raises(TypeError, match="training texts must be str, got bytes"):
        Tokenizer.train([b"bytes"], vocab_size=300)


def test_missing_or_undecodable_training_files_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="training file not found"):
        Tokenizer.train_from_files([tmp_path / "missing.txt"], vocab_size=300)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        Tokenizer.train_from_files([latin1], vocab_size=300)


def test_training_reads_an_iterator_once():
    lines = builtin_corpus()[:20_000].splitlines(keepends=True)
    from_iterator = Tokenizer.train((line for line in lines), vocab_size=400)
    assert from_iterator.merges == Tokenizer.train(lines, vocab_size=400).merges


def test_train_function_is_the_classmethod():
    import bpe

    assert bpe.train("aaab", vocab_size=257).merges == [(ord("a"), ord("a"))]
