"""The data pipeline: cleaning and its report, token files, prepared datasets, and both
ways of batching (random windows, sliding windows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpe.corpus import CorpusUnavailable, builtin_documents
from gpt.data.batches import RandomWindows, SlidingWindows
from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.dataset import Dataset, prepare, read_documents
from gpt.data.token_cache import load_tokens, save_tokens

LONG_LINE = "This line is long enough to count as boilerplate when it repeats."


# -- cleaning ---------------------------------------------------------------------------
def test_cleaning_normalises_unicode_and_removes_control_characters():
    docs, report = clean_documents(["cafe\u0301\r\nbell\x07 and\x00 bom\ufeff bad\ufffd"])
    assert docs == ["caf\u00e9\nbell and bom bad"]
    assert report.removed["documents changed by NFC normalisation"] == 1
    assert report.removed["control characters (and undecodable bytes) removed"] == 4


def test_cleaning_normalises_after_controls_and_keeps_words_apart_in_ascii():
    # a control between a letter and its accent must not stop them composing
    docs, _ = clean_documents(["e\x07\u0301 e\ufeff\u0301"])
    assert docs == ["\u00e9 \u00e9"]
    docs, _ = clean_documents(["caf\u00e9\u00a0bar"], CleaningOptions(ascii_only=True))
    assert docs == ["caf bar"]


def test_cleaning_counts_the_cr_of_each_crlf_as_whitespace():
    docs, report = clean_documents(["a\r\nb\r\rc\r\n"])
    assert docs == ["a\nb\n\nc"]
    assert report.removed == {"whitespace characters removed": 2 + 1}
    assert report.chars_in - report.chars_out == 3


def test_cleaning_tidies_whitespace():
    docs, report = clean_documents(["\n\nline one   \n\n\n\n\nline\u00a0two\t\n\n"])
    assert docs == ["line one\n\nline two"]
    assert report.removed["unusual spaces replaced by ' '"] == 1
    # 3 trailing spaces + a tab, 3 surplus newlines in the middle, 2 + 2 at the ends.
    assert report.removed["whitespace characters removed"] == 4 + 3 + 4


def test_cleaning_drops_duplicate_documents_and_long_duplicate_lines():
    a = f"Speaker.\n{LONG_LINE}\nfirst story"
    b = f"Speaker.\n{LONG_LINE}\nsecond story"
    docs, report = clean_documents([a, b, a])
    # The short line repeats (a speaker's name), the long one is boilerplate.
    assert docs == [a, "Speaker.\nsecond story"]
    assert report.removed == {"duplicate documents removed": 1, "duplicate lines removed": 1}
    assert (report.documents_in, report.documents_out) == (3, 2)
    assert report.chars_out == len(a) + len("Speaker.\nsecond story")


def test_cleaning_keeps_duplicates_when_asked():
    options = CleaningOptions(dedup_documents=False, dedup_lines_min_chars=None)
    docs, report = clean_documents([LONG_LINE, LONG_LINE], options)
    assert docs == [LONG_LINE, LONG_LINE]
    assert report.removed == {}
    assert "nothing removed" in report.format()


def test_cleaning_filters_by_length_letters_and_ascii():
    options = CleaningOptions(min_chars=5, max_chars=30, min_letter_fraction=0.5,
                              ascii_only=True)
    docs, report = clean_documents(["tiny", "x" * 31, "1234 5678 90 | -- | ++", "na\u00efve text"],
                                   options)
    assert docs == ["nave text"]
    assert report.removed == {
        "non-ASCII characters removed": 1,
        "documents shorter than 5 characters removed": 1,
        "documents longer than 30 characters removed": 1,
        "documents under 50% letters removed": 1,
    }
    text = report.format()
    assert "4 documents" in text and "1 documents" in text and "non-ASCII" in text


@pytest.mark.parametrize("bad", [{"normalization": "NFX"}, {"min_letter_fraction": 1.5},
                                 {"min_chars": 10, "max_chars": 5}])
def test_cleaning_options_are_checked(bad):
    with pytest.raises(ValueError, match="cleaning"):
        CleaningOptions(**bad)


def test_read_documents_replaces_undecodable_bytes_and_names_missing_files(tmp_path):
    path = tmp_path / "bytes.txt"
    path.write_bytes(b"ok \xff\xfe text")
    (doc,) = read_documents([path])
    docs, report = clean_documents([doc])
    assert docs == ["ok  text"]
    assert report.removed["control characters (and undecodable bytes) removed"] == 2
    with pytest.raises(FileNotFoundError, match="missing.txt is not found"):
        read_documents([tmp_path / "missing.txt"])
    with pytest.raises(FileNotFoundError, match="a directory"):
        read_documents([tmp_path])


def test_builtin_corpus_and_its_absence(monkeypatch):
    docs = builtin_documents()
    assert len(docs) > 50 and sum(map(len, docs)) > 100_000
    monkeypatch.setitem(__import__("sys").modules, "pydoc_data.topics", None)
    with pytest.raises(CorpusUnavailable, match="--data"):
        builtin_documents()


# -- token files ------------------------------------------------------------------------
def test_token_file_round_trip_is_memory_mapped(tmp_path):
    ids = [0, 5, 299, 17]
    path = save_tokens(tmp_path / "t.npy", ids, vocab_size=300)
    tokens = load_tokens(path)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    assert tokens.tolist() == ids
    with pytest.raises(ValueError, match=r"\[0, 300\)"):
        save_tokens(tmp_path / "u.npy", [300], vocab_size=300)
    (tmp_path / "bad.npy").write_bytes(b"not a token file")
    with pytest.raises(ValueError, match="prepare"):
        load_tokens(tmp_path / "bad.npy")


# -- prepared datasets ------------------------------------------------------------------
def test_prepare_writes_a_dataset_and_reuses_it(tmp_path):
    docs = ["hello world, " * 40, "another document\n" * 30]
    messages = []
    ds = prepare(tmp_path / "ds", docs, ["a", "b"], val_fraction=0.25, log=messages.append)
    total = len("\n\n".join(clean_documents(docs)[0]))
    assert len(ds.train) + len(ds.val) == total and len(ds.val) == int(total * 0.25)
    assert ds.train.dtype == np.uint8 and ds.meta["sources"] == ["a", "b"]
    assert ds.tokenizer.decode(np.concatenate([ds.train, ds.val])).startswith("hello world")
    assert any("cleaning:" in m for m in messages)

    messages.clear()
    again = prepare(tmp_path / "ds", docs, ["a", "b"], val_fraction=0.25, log=messages.append)
    assert messages == [f"prepare: {tmp_path / 'ds'} already holds these tokens; "
                        "not tokenizing again"]
    assert np.array_equal(again.train, ds.train)

    changed = prepare(tmp_path / "ds", docs, ["a", "b"], val_fraction=0.5, log=messages.append)
    assert len(changed.val) == int(total * 0.5)
    assert Dataset.load(tmp_path / "ds").meta["val_fraction"] == 0.5


def test_prepare_with_bpe_and_errors(tmp_path):
    docs = ["the cat sat on the mat. " * 50]
    ds = prepare(tmp_path / "bpe", docs, ["x"], tokenizer="bpe", vocab_size=270, log=print)
    # A repetitive text runs out of pairs to merge before 270; the bytes alone are 256.
    assert 256 < ds.vocab_size <= 270 and ds.train.dtype == np.uint16
    assert len(ds.train) + len(ds.val) < len(docs[0].strip())  # merges shorten the text
    with pytest.raises(ValueError, match="needs --vocab-size"):
        prepare(tmp_path / "x", docs, ["x"], tokenizer="bpe", log=print)
    with pytest.raises(FileNotFoundError, match="neither 'char', 'bpe'"):
        prepare(tmp_path / "x", docs, ["x"], tokenizer="no-such-tokenizer", log=print)
    with pytest.raises(ValueError, match="no text left after cleaning"):
        prepare(tmp_path / "x", [" \n\t "], ["empty.txt"], log=print)
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        Dataset.load(tmp_path)


# -- random windows ---------------------------------------------------------------------
def test_random_windows_shapes_and_shifted_targets():
    tokens = np.arange(1000, dtype=np.uint16)  # a token's value is its position
    x, y = RandomWindows(tokens, block_size=16, batch_size=5, seed=0).next_batch()
    assert x.shape == y.shape == (5, 16) and x.dtype == np.int64
    assert np.array_equal(y, x + 1)  # the next token at every position
    assert np.array_equal(x, x[:, :1] + np.arange(16))  # contiguous windows
    assert x.min() >= 0 and y.max() <= 999


def test_random_windows_are_deterministic_and_resumable():
    tokens = np.arange(500)
    a, b = RandomWindows(tokens, 8, 4, seed=3), RandomWindows(tokens, 8, 4, seed=3)
    first = [a.next_batch()[0] for _ in range(3)]
    assert all(np.array_equal(u, b.next_batch()[0]) for u in first)
    assert not np.array_equal(first[0], RandomWindows(tokens, 8, 4, seed=4).next_batch()[0])
    state = a.state_dict()
    expected = a.next_batch()[0]
    resumed = RandomWindows(tokens, 8, 4, seed=99)
    resumed.load_state_dict(state)
    assert np.array_equal(resumed.next_batch()[0], expected)


def test_windows_need_a_block_plus_one_token():
    RandomWindows(np.arange(9), 8, 1)  # exactly one window fits
    with pytest.raises(ValueError, match="block size 8 is larger than the data"):
        RandomWindows(np.arange(8), 8, 1)
    with pytest.raises(ValueError, match="larger than the data"):
        SlidingWindows(np.arange(5), 8, 8, 1)


# -- sliding windows --------------------------------------------------------------------
def test_sliding_windows_follow_the_books_loader():
    tokens = np.arange(20)
    loader = SlidingWindows(tokens, max_length=4, stride=4, batch_size=2, shuffle=False)
    # range(0, len - max_length, stride): windows start at 0, 4, 8, 12.
    assert loader.starts.tolist() == [0, 4, 8, 12] and len(loader) == 2
    batches = list(loader)
    assert [x.tolist() for x, _ in batches] == [[[0, 1, 2, 3], [4, 5, 6, 7]],
                                                [[8, 9, 10, 11], [12, 13, 14, 15]]]
    assert all(np.array_equal(y, x + 1) for x, y in batches)


def test_sliding_windows_overlap_and_drop_last():
    tokens = np.arange(12)
    loader = SlidingWindows(tokens, max_length=4, stride=2, batch_size=3, shuffle=False,
                            drop_last=False)
    assert loader.starts.tolist() == [0, 2, 4, 6] and len(loader) == 2
    (x1, _), (x2, _) = list(loader)
    assert x1[1].tolist() == [2, 3, 4, 5] and x2.shape == (1, 4)  # short last batch kept
    dropping = SlidingWindows(tokens, max_length=4, stride=2, batch_size=3, shuffle=False)
    assert len(dropping) == 1 and len(list(dropping)) == 1
    with pytest.raises(ValueError, match="do not fill one batch"):
        SlidingWindows(tokens, max_length=4, stride=2, batch_size=5)


def test_sliding_windows_shuffle_per_epoch_deterministically():
    tokens = np.arange(200)

    def epoch_starts(loader):
        return sorted(int(x[0, 0]) for x, _ in loader)

    a = SlidingWindows(tokens, 8, 8, 1, shuffle=True, seed=5)
    order_a = [int(x[0, 0]) for x, _ in a]
    b = SlidingWindows(tokens, 8, 8, 1, shuffle=True, seed=5)
    assert [int(x[0, 0]) for x, _ in b] == order_a  # same seed, same order
    assert order_a != sorted(order_a)  # shuffled
    assert sorted(order_a) == a.starts.tolist()  # every window once per epoch
    second = [int(x[0, 0]) for x, _ in a]
    assert second != order_a and sorted(second) == sorted(order_a)
    assert epoch_starts(SlidingWindows(tokens, 8, 8, 1, seed=6)) == sorted(order_a)


def test_sliding_windows_resume_mid_epoch():
    tokens = np.arange(300)
    a = SlidingWindows(tokens, 8, 5, 4, seed=1)
    for _ in range(len(a) + 3):  # into the second epoch
        a.next_batch()
    state = a.state_dict()
    assert state == {"epoch": 1, "position": 3}
    expected = [a.next_batch()[0] for _ in range(len(a))]  # crosses into epoch 2
    b = SlidingWindows(tokens, 8, 5, 4, seed=1)
    b.load_state_dict(state)
    assert all(np.array_equal(e, b.next_batch()[0]) for e in expected)


@given(n=st.integers(10, 80), max_length=st.integers(1, 9), stride=st.integers(1, 9),
       batch_size=st.integers(1, 4))
def test_sliding_windows_cover_the_starts_exactly(n, max_length, stride, batch_size):
    tokens = np.arange(n)
    loader = SlidingWindows(tokens, max_length, stride, batch_size, shuffle=False,
                            drop_last=False)
    xs, ys = zip(*loader)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x[:, 0].tolist() == list(range(0, n - max_length, stride))
    assert np.array_equal(y, x + 1) and x.shape[1] == max_length
    assert y.max() < n
    assert len(xs) == len(loader) == -(-len(x) // batch_size)
