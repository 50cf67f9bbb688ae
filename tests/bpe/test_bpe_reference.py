"""The plain BPE of bpe.reference as an oracle for the fast trainer and encoder."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpe import TIE_BREAKS, Tokenizer, reference

# Small alphabets so that pairs repeat and ties are common; multi-byte characters so that
# merges inside a character's bytes happen too.
ALPHABET = list("aabbcde  ABZ019.,!'s\n\t\r") + ["é", "ß", "中", "😀"]
CORPUS = st.lists(st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=60),
                  min_size=1, max_size=20)
TEXT = st.text(alphabet=st.sampled_from(ALPHABET), max_size=200)


def test_worked_example():
    # "aaabdaaabac" is one chunk. Pairs, overlapping ones counted: (a,a) 4, (a,b) 2, others 1,
    # so (a,a) becomes 256: [256 a b d 256 a b a c]. Now (256,a) and (a,b) both occur twice;
    # with byte-value order the byte a comes before the merged 256, so (a,b) becomes 257:
    # [256 257 d 256 257 a c], and (256,257) becomes 258.
    merges = reference.train(["aaabdaaabac"], vocab_size=259, tie_break="byte-value")
    a, b = ord("a"), ord("b")
    assert merges == [(a, a), (a, b), (256, 257)]
    ranks = reference.ranks_from_merges(merges)
    assert reference.encode("aaabdaaabac", ranks) == [258, ord("d"), 258, a, ord("c")]


@pytest.mark.parametrize("tie_break", sorted(TIE_BREAKS))
@settings(max_examples=30, deadline=None)
@given(texts=CORPUS, extra=st.integers(1, 80), pattern=st.sampled_from(["gpt2", "cl100k"]))
def test_fast_trainer_learns_the_reference_merges(tie_break, texts, extra, pattern):
    vocab_size = 256 + extra
    fast = Tokenizer.train(texts, vocab_size=vocab_size, pattern=pattern, tie_break=tie_break,
                           num_workers=1)
    merges = reference.train(texts, vocab_size, pattern, tie_break)
    assert fast.merges == merges
    assert fast.mergeable_ranks == reference.ranks_from_merges(merges)


@settings(max_examples=30, deadline=None)
@given(texts=CORPUS, extra=st.integers(1, 80))
def test_default_tie_break_is_the_references(texts, extra):
    fast = Tokenizer.train(texts, vocab_size=256 + extra, num_workers=1)
    assert fast.merges == reference.train(texts, 256 + extra)


@settings(max_examples=40, deadline=None)
@given(texts=CORPUS, extra=st.integers(1, 120), text=TEXT)
def test_fast_encoder_gives_the_reference_ids(texts, extra, text):
    ranks = reference.ranks_from_merges(reference.train(texts, 256 + extra))
    fast = Tokenizer(ranks, pattern="gpt2")
    # The corpus's letters repeated: one chunk of over 128 bytes, which takes the fast
    # encoder's long-chunk path, with merges learned from the same letters.
    letters = "".join(char for char in "".join(texts) if char.isalpha()) or "a"
    long_chunk = letters * (1 + 128 // len(letters))
    for sample in (text, "".join(texts), texts[0] + text, long_chunk):
        assert fast.encode_ordinary(sample) == reference.encode(sample, ranks)


@settings(max_examples=40, deadline=None)
@given(words=st.lists(st.text(alphabet="abc", min_size=2, max_size=6), min_size=1, max_size=30,
                      unique=True),
       order=st.randoms(use_true_random=False), text=st.text(alphabet="abc ", max_size=300))
def test_fast_encoder_gives_the_reference_ids_for_any_rank_order(words, order, text):
    """Ranks in random order, so merges can form pairs of lower rank than the one merged."""
    order.shuffle(words)
    ranks = {bytes([byte]): byte for byte in range(256)}
    for word in words:
        ranks.setdefault(word.encode(), len(ranks))
    fast = Tokenizer(ranks, pattern=r"\S+|\s+")
    assert fast.encode_ordinary(text) == reference.encode(text, ranks, r"\S+|\s+")
