"""Reading Hugging Face tokenizer.json files: models that `tokenizers` itself trained."""

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpe import Tokenizer
from bpe import load as bpe_load
from bpe.corpus import builtin_corpus
from bpe.patterns import CL100K_PATTERN, SplitPattern

tokenizers = pytest.importorskip("tokenizers", reason="the files are written by tokenizers")

SPECIALS = ["<|endoftext|>", "<pad>"]
ADDED = ["hello world", "<tool>"]


def generated_text(seed, size):
    """Prose from the corpus mixed with other scripts, digits, emoji and line ends."""
    rng = random.Random(seed)
    corpus = builtin_corpus()
    extras = ["中文字", "Ελληνικά", "😀👍🏽", " 12345", "\r\n", "  \t", "naïve", "'LL", "<tool>"]
    parts = []
    while sum(map(len, parts)) < size:
        start = rng.randrange(len(corpus) - 200)
        parts += [corpus[start : start + rng.randrange(20, 200)], rng.choice(extras)]
    return "".join(parts)


def train_with_tokenizers(pre_tokenizer, path):
    """Train a byte-level BPE with tokenizers' BpeTrainer, add tokens, save tokenizer.json."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    model = tokenizers.Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizer
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    model.train_from_iterator([generated_text(0, 150_000)], trainer)
    model.add_tokens(ADDED[:1])
    model.add_special_tokens(ADDED[1:])
    model.save(str(path))
    return model


def byte_level():
    return tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)


def split_then_byte_level():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SplitPattern.resolve("cl100k").oniguruma_source), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


@pytest.fixture(scope="module", params=["ByteLevel", "Split+ByteLevel"])
def pair(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    pre_tokenizer = byte_level() if request.param == "ByteLevel" else split_then_byte_level()
    theirs = train_with_tokenizers(pre_tokenizer, path)
    return Tokenizer.from_huggingface(path), theirs, path


def test_imported_model_has_the_same_vocabulary(pair):
    ours, theirs, _ = pair
    assert ours.vocab_size == theirs.get_vocab_size()
    assert ours.special_tokens == {token: theirs.token_to_id(token) for token in SPECIALS + ADDED}
    expected = "gpt2" if theirs.pre_tokenizer.__class__.__name__ == "ByteLevel" else "cl100k"
    assert ours.pattern.name == expected


def test_ids_are_those_of_tokenizers_on_new_text(pair):
    ours, theirs, _ = pair
    text = generated_text(1, 200_000) + "".join(SPECIALS + ADDED)
    ids = ours.encode(text, allowed_special="all")
    assert ids == theirs.encode(text).ids
    assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=False) == text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(SPECIALS + ADDED + ["a", " b", "\n", "é", "1"])
                     | st.text(max_size=8), max_size=20).map("".join))
def test_ids_are_those_of_tokenizers_on_generated_text(pair, text):
    ours, theirs, _ = pair
    assert ours.encode(text, allowed_special="all") == theirs.encode(text).ids


def test_our_export_reads_back(pair, tmp_path):
    ours, _, _ = pair
    path = tmp_path / "exported.json"
    ours.save_huggingface(path)
    again = Tokenizer.from_huggingface(path)
    assert again.mergeable_ranks == ours.mergeable_ranks
    assert again.special_tokens == ours.special_tokens
    assert again.pattern == ours.pattern


def split_then_byte_level_json(regex_source):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex_source}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]}


def edited(path, tmp_path, edit):
    document = json.loads(path.read_text(encoding="utf-8"))
    edit(document)
    target = tmp_path / "edited.json"
    target.write_text(json.dumps(document), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(normalizer={"type": "NFC"}), "normalizer 'NFC' is not supported"),
        (lambda d: d["pre_tokenizer"].update(add_prefix_space=True)
         if d["pre_tokenizer"]["type"] == "ByteLevel"
         else d["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space=True),
         "add_prefix_space=true is not supported"),
        (lambda d: d["model"].update(type="WordPiece"), "model type is 'WordPiece'"),
        (lambda d: d["model"].update(dropout=0.1), "dropout=0.1 is not supported"),
        (lambda d: d["model"]["merges"].reverse(), "merge 1 .* ranks cannot reproduce"),
        (lambda d: d["model"]["merges"].append(["zz", "q"]), "is not a merge of two tokens"),
        (lambda d: d["added_tokens"][0].update(lstrip=True),
         "has lstrip=true, which is not supported"),
        (lambda d: d.update(post_processor={"type": "TemplateProcessing"}),
         "post-processor 'TemplateProcessing'"),
        (lambda d: d.update(decoder={"type": "Metaspace"}), "decoder 'Metaspace' is not supported"),
        (lambda d: d.pop("model"), "is not a Hugging Face BPE tokenizer.json"),
    ],
)
def test_unsupported_or_malformed_files_are_clear_errors(pair, tmp_path, edit, message):
    _, _, path = pair
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_huggingface(edited(path, tmp_path, edit))


@pytest.mark.parametrize("content", [b"{not json", b"\n\x80\x1f binary"])
def test_a_file_that_is_not_json_is_a_clear_error(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a JSON tokenizer file"):
        Tokenizer.from_huggingface(path)


@pytest.mark.parametrize("added, special", [(["the", "ing"], []), ([], ["e"]),
                                            (["the"], ["<|x|>"])])
def test_added_tokens_that_are_already_tokens_keep_their_ids(tmp_path, added, special):
    """`tokenizers` gives an added token whose text is already a token (a merge's result,
    a single byte) that token's id: it is still a BPE token, matched as an added one."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    theirs = tokenizers.Tokenizer(models.BPE())
    theirs.pre_tokenizer = byte_level()
    theirs.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    theirs.train_from_iterator([generated_text(2, 60_000)], trainer)
    theirs.add_tokens(added)
    theirs.add_special_tokens(special)
    path = tmp_path / "tokenizer.json"
    theirs.save(str(path))
    ours = Tokenizer.from_huggingface(path)
    for text in ["the theory", "see the tree", "<|x|>e", "nothing", generated_text(3, 3_000)]:
        ids = theirs.encode(text, add_special_tokens=False).ids
        assert ours.encode(text, allowed_special="all") == ids
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=False)


def test_a_vocabulary_without_every_byte_is_refused_with_the_fix(tmp_path):
    from tokenizers import models, trainers

    theirs = tokenizers.Tokenizer(models.BPE())
    theirs.pre_tokenizer = byte_level()
    theirs.train_from_iterator(["only a few letters"], trainers.BpeTrainer(
        vocab_size=300, show_progress=False))
    path = tmp_path / "tokenizer.json"
    theirs.save(str(path))
    with pytest.raises(ValueError, match=r"tokenizer.json'.*lacks .* of the 256 single bytes"
                                         r".*initial_alphabet"):
        Tokenizer.from_huggingface(path)


@pytest.mark.parametrize("added, special", [(["QQz"], ["zWW"]), (["QQzWW"], ["QQz"]),
                                            (["ab", "abcd"], ["bc"])])
def test_overlapping_added_tokens_match_as_tokenizers_matches_them(tmp_path, added, special):
    """`tokenizers` finds the non-normalized added tokens (special ones, by default) first
    and the normalized ones (`add_tokens`) only in the text between them."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    theirs = tokenizers.Tokenizer(models.BPE())
    theirs.pre_tokenizer = byte_level()
    theirs.decoder = decoders.ByteLevel()
    theirs.train_from_iterator([generated_text(4, 30_000)], trainers.BpeTrainer(
        vocab_size=400, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    theirs.add_tokens(added)
    theirs.add_special_tokens(special)
    path = tmp_path / "tokenizer.json"
    theirs.save(str(path))
    ours = Tokenizer.from_huggingface(path)
    again = tmp_path / "ours.json"
    ours.save(again)
    exported = tmp_path / "exported.json"
    ours.save_huggingface(exported)
    for text in ["QQzWW", "xQQzWWy QQz zWW", "abcd abc bcd ab", "QQzQQzWWzWW"]:
        ids = theirs.encode(text, add_special_tokens=False).ids
        assert ours.encode(text, allowed_special="all") == ids, text
        assert bpe_load(again).encode(text, allowed_special="all") == ids, text
        assert Tokenizer.from_huggingface(exported).encode(text, allowed_special="all") == ids


def small_model(tmp_path, pre_tokenizer, added=()):
    """A small byte-level BPE that tokenizers trains, saved; (theirs, path)."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    theirs = tokenizers.Tokenizer(models.BPE())
    theirs.pre_tokenizer = pre_tokenizer
    theirs.decoder = decoders.ByteLevel()
    theirs.train_from_iterator([generated_text(5, 30_000)], trainers.BpeTrainer(
        vocab_size=400, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    theirs.add_tokens(list(added))
    path = tmp_path / "tokenizer.json"
    theirs.save(str(path))
    return theirs, path


def test_text_a_split_regex_leaves_unmatched_is_kept_in_chunks_as_tokenizers_keeps_it(
        tmp_path):
    """Hugging Face's Isolated split keeps the text between matches as pieces of its own."""
    from tokenizers import Regex, pre_tokenizers

    theirs, path = small_model(tmp_path, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{L}+"), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]))
    ours = Tokenizer.from_huggingface(path)
    exported = tmp_path / "exported.json"
    ours.save_huggingface(exported)
    again = Tokenizer.from_huggingface(exported)
    assert again.pattern == ours.pattern
    for text in ["0, in any context 12  \n x", " 😀 ", "abc", "", generated_text(6, 3_000)]:
        ids = theirs.encode(text).ids
        assert ours.encode(text) == ids
        assert again.encode(text) == ids
        assert tokenizers.Tokenizer.from_file(str(exported)).encode(text).ids == ids


def test_tiktoken_cl100k_regex_in_a_split_splits_digits_as_oniguruma_reads_it(pair, tmp_path):
    """tiktoken's own cl100k string in a Split: Oniguruma reads \\p{N}{1,3}+ as
    (\\p{N}{1,3})+, so a digit run is one chunk there; ours reads it the same way."""
    _, _, path = pair
    edit = lambda d: d.update(pre_tokenizer=split_then_byte_level_json(CL100K_PATTERN))  # noqa: E731
    path = edited(path, tmp_path, edit)
    theirs, ours = tokenizers.Tokenizer.from_file(str(path)), Tokenizer.from_huggingface(path)
    assert ours.pattern.split("a 1234567\n\n") == ["a", " ", "1234567", "\n\n"]
    for text in ["1234567", "x 12345 678\t9", "٣٣٣٣٣ and ²²²²", generated_text(7, 4_000)]:
        assert ours.encode(text, allowed_special="all") == theirs.encode(text).ids


@pytest.mark.parametrize(("source", "text", "construct"), [
    (r"(?:ab){1,2}+|[\s\S]", "ababab", r"'\{1,2\}\+'"),
    (r"\S+$|\s+|.", "ab\ncd", r"'\$'"),
    (r"^\S+|\s|\S", "ab\ncd", r"'\^'"),
    (r"\w+|\W", "x²", r"'\\\\w'"),
    (r"\h+|[\s\S]", "a\t b", r"'\\\\h'"),
    (r"[\p{L}&&[^a-z]]+|[\s\S]", "éZa", "'&&'"),
])
def test_split_regexes_that_oniguruma_reads_otherwise_are_refused(source, text, construct):
    """Each construct splits ``text`` otherwise in tokenizers (checked here) than in regex."""
    import regex
    from tokenizers import Regex, pre_tokenizers

    theirs = pre_tokenizers.Split(Regex(source), "isolated").pre_tokenize_str(text)
    assert [piece for piece, _ in theirs] != regex.findall(source, text)
    with pytest.raises(ValueError, match=f"Oniguruma.* reads {construct} otherwise"):
        SplitPattern.from_oniguruma(source)
    with pytest.raises(ValueError, match=f"reads {construct} otherwise"):
        SplitPattern(source).oniguruma_source  # noqa: B018 (the export refuses it too)


def test_an_added_token_that_spells_another_byte_token_is_refused(tmp_path):
    """tokenizers gives the added text "é" the id of the token "é" in the byte alphabet,
    the byte 0xE9, so the text would decode to other bytes: refused, not loaded wrong."""
    _, path = small_model(tmp_path, byte_level(), added=["é"])
    with pytest.raises(ValueError, match=r"added token 'é' is also the token 'é'.*b'\\xe9'"):
        Tokenizer.from_huggingface(path)
