"""SentencePiece BPE models that our trainer learns and writes: `sentencepiece` loads them and
encodes and decodes every text as our SentencePieceTokenizer does."""

import random
from collections import Counter

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpe.sentencepiece import (
    BYTE,
    CONTROL,
    NORMAL,
    SPACE,
    UNKNOWN,
    SentencePieceTokenizer,
    read_protobuf,
    write_protobuf,
)
from bpe.sentencepiece_training import train_sentencepiece

spm = pytest.importorskip("sentencepiece", reason="sentencepiece checks the models we write")

SCRIPTS = ["etaoinshrdlucmfwypvbgk", "оеаинтсрвлкмдпу", "αεηιοστνρκλμ",
           "的一是不了人我在有他这中大来上"]
EMOJI = ["😀", "👍🏽", "🎉"]
# Characters the training text never has: unknown pieces, or byte fallback.
UNSEEN = ["∂", "₿₿", "🚀", "\t", "ß", "\u3000", "▁", "Ж", "naïve", "x\ny"]


def lexicon():
    """Made-up words in four scripts, numbers, emoji and punctuation, in a random order."""
    rng = random.Random(0)
    words = [
        "".join(rng.choice(letters) for _ in range(rng.randint(1, 8)))
        for letters in SCRIPTS
        for _ in range(40)
    ]
    words += [str(rng.randint(0, 2030)) for _ in range(20)] + EMOJI + [",", ".", "'s", "!"]
    rng.shuffle(words)
    return words


WORDS = lexicon()


def generated_text(seed, lines):
    """Lines of words drawn with Zipf's law, with extra spaces here and there."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    out = []
    for _ in range(lines):
        separator = rng.choice([" ", " ", " ", "  "])
        words = rng.choices(WORDS, weights, k=rng.randint(3, 15))
        out.append(rng.choice(["", " "]) + separator.join(words) + rng.choice(["", ".", "  "]))
    return "\n".join(out)


TRAINING_TEXT = generated_text(0, 1500)

CONFIGS = {
    "byte-fallback": {},
    "unknown-pieces": {"byte_fallback": False, "character_coverage": 0.999},
    "spaces-kept": {"add_dummy_prefix": False, "remove_extra_whitespaces": False},
}


def train(text, vocab_size=400, **options):
    reserved = 3 if options.get("byte_fallback") is False else 259
    return train_sentencepiece([text], vocab_size=reserved + vocab_size, num_workers=1, **options)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def trained(request, tmp_path_factory):
    """Our trained model, and the file we wrote loaded by us and by sentencepiece."""
    model = train(TRAINING_TEXT, **CONFIGS[request.param])
    path = tmp_path_factory.mktemp("sentencepiece") / "m.model"
    model.save(path)
    return model, SentencePieceTokenizer.load(path), spm.SentencePieceProcessor(
        model_file=str(path))


def test_sentencepiece_reads_our_pieces_scores_and_types(trained):
    model, ours, theirs = trained
    assert ours.pieces == model.pieces
    assert theirs.get_piece_size() == model.vocab_size
    for token, (piece, score, kind) in enumerate(model.pieces):
        assert theirs.id_to_piece(token) == piece
        assert theirs.get_score(token) == score
        assert (theirs.is_unknown(token), theirs.is_control(token), theirs.is_byte(token)) == (
            kind == UNKNOWN, kind == CONTROL, kind == BYTE)


def test_pieces_are_laid_out_as_sentencepiece_lays_them_out(trained):
    model, _, theirs = trained
    assert model.pieces[:3] == [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL),
                                ("</s>", 0.0, CONTROL)]
    assert (theirs.unk_id(), theirs.bos_id(), theirs.eos_id()) == (0, 1, 2)
    normal = [(piece, score) for piece, score, kind in model.pieces if kind == NORMAL]
    if model.byte_fallback:
        assert [piece for piece, _, _ in model.pieces[3:259]] == [
            f"<0x{byte:02X}>" for byte in range(256)]
    assert len(normal) == model.vocab_size - (259 if model.byte_fallback else 3)
    assert [score for _, score in normal] == [-float(rank) for rank in range(len(normal))]
    assert len({piece for piece, _, _ in model.pieces}) == model.vocab_size
    assert not any(SPACE in piece[1:] for piece, _ in normal)  # merges stay within words


def training_words(model):
    for line in TRAINING_TEXT.splitlines():
        yield from regex.findall(f"{SPACE}[^{SPACE}]*|[^{SPACE}]+", model.normalize(line))


def test_the_most_frequent_pair_is_merged_first_and_merges_compress(trained):
    model, ours, _ = trained
    pair_counts = Counter(word[at : at + 2] for word in training_words(model)
                          for at in range(len(word) - 1))
    first_merge = next(piece for piece, _, kind in model.pieces if kind == NORMAL)
    assert pair_counts[first_merge] == max(pair_counts.values())
    assert len(ours.encode(TRAINING_TEXT)) < len(TRAINING_TEXT) / 2.5


def test_new_text_encodes_and_decodes_identically(trained):
    _, ours, theirs = trained
    text = generated_text(1, 300) + " ".join(UNSEEN) + "".join(UNSEEN) + "  end  "
    ids = ours.encode(text)
    assert ids == theirs.encode(text)
    assert ours.decode(ids) == theirs.decode(ids)


SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(text=st.lists(st.sampled_from([*WORDS[:30], *UNSEEN, " ", "  ", "<s>"])
                     | st.text(max_size=5), max_size=20).map("".join))
def test_generated_text_encodes_and_round_trips_as_in_sentencepiece(trained, text):
    model, ours, theirs = trained
    ids = ours.encode(text)
    assert ids == theirs.encode(text)
    assert ours.decode(ids) == theirs.decode(ids)
    if model.byte_fallback:  # every character encodes: only the spaces change
        expected = model.normalize(text).replace(SPACE, " ")
        assert ours.decode(ids) == (expected.lstrip(" ") if model.add_dummy_prefix else expected)


@SETTINGS
@given(data=st.data())
def test_any_ids_decode_identically(trained, data):
    _, ours, theirs = trained
    ids = data.draw(st.lists(st.integers(0, ours.vocab_size - 1), max_size=12))
    assert ours.decode(ids) == theirs.decode(ids)


def test_rare_characters_are_left_to_the_unknown_piece_or_bytes():
    text = "ab ab ab ab ab ab ab ab ab ж"
    for byte_fallback, expected in [(False, [0]), (True, [3 + byte for byte in "ж".encode()])]:
        model = train(text, vocab_size=4, byte_fallback=byte_fallback, character_coverage=0.9)
        assert "ж" not in {piece for piece, _, _ in model.pieces}
        space = [piece for piece, _, _ in model.pieces].index(SPACE)
        assert model.encode("ж") == [space, *expected]


def test_text_that_spells_special_or_byte_pieces_learns_no_such_piece(tmp_path):
    reserved = ["<s>", "</s>", "<unk>", "<0x41>"]
    text = "\n".join(reserved * 50)
    model = train(text, vocab_size=40, add_dummy_prefix=False)
    normal = {piece for piece, _, kind in model.pieces if kind == NORMAL}
    assert {"s>", "</", "41>"} <= normal  # the merges that lead to them are learned
    assert not normal & set(reserved)
    model.save(tmp_path / "m.model")
    theirs = spm.SentencePieceProcessor(model_file=str(tmp_path / "m.model"))
    for sample in [text, "".join(reserved), "x<unk>y <s>"]:
        assert model.encode(sample) == theirs.encode(sample)


@pytest.mark.parametrize("max_piece_length", [3, 16])
def test_no_piece_is_longer_than_max_piece_length(max_piece_length):
    model = train("ab" * 500 + " " + "c" * 999, vocab_size=50, max_piece_length=max_piece_length)
    lengths = [len(piece) for piece, _, kind in model.pieces if kind == NORMAL]
    assert max(lengths) == max_piece_length


def test_protobuf_writer_is_the_inverse_of_the_reader(trained):
    _, ours, _ = trained
    data = ours.to_bytes()
    assert write_protobuf(read_protobuf(data)) == data
    with pytest.raises(ValueError, match="non-negative"):
        write_protobuf([(1, 0, -1)])
    with pytest.raises(ValueError, match="cannot write b'ab' as wire type 5"):
        write_protobuf([(1, 5, b"ab")])


@pytest.mark.parametrize(
    ("texts", "options", "error", "message"),
    [
        (["a b c"], {"vocab_size": 260}, ValueError, "vocab_size 260 is too small for the 259"),
        (["", "  \n"], {}, ValueError, "the training corpus is empty"),
        (["ab"], {"character_coverage": 0}, ValueError, "character_coverage must be in"),
        (["ab"], {"min_frequency": 0}, ValueError, "min_frequency must be a positive int"),
        (["ab"], {"max_piece_length": 0}, ValueError, "max_piece_length must be a positive"),
        ([b"ab"], {}, TypeError, "training texts must be str"),
        (["ab"], {"vocab_size": "300"}, TypeError, "vocab_size must be an int"),
    ],
)
def test_bad_options_and_corpora_are_clear_errors(texts, options, error, message):
    with pytest.raises(error, match=message):
        train_sentencepiece(texts, **{"vocab_size": 300, **options})
