"""`gpt prepare` streams: files in pieces, cleaning exactly as if each document were
whole, tokenizing on worker processes, token files written a block at a time. Each test
shrinks the piece sizes so that a small corpus spans many pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpe
from bpe.workers import ordered_map
from gpt import cli
from gpt.data import dataset as dataset_module
from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.dataset import Dataset, prepare
from gpt.data.seen_hashes import SeenHashes
from gpt.data.token_cache import load_tokens, max_token, save_token_range

LONG = "a line long enough to be deduplicated, forty characters or more"
PIECES = st.sampled_from(["a", "b c", " ", "\t", "\n", "\n\n\n", "\r\n", "\r", "\x07", "\u00a0",
                          "e\u0301", "\ufffd", LONG, LONG + " \n", "  " + LONG])
DOCUMENT = st.lists(PIECES, max_size=30).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents=st.lists(DOCUMENT, max_size=5),
       dedup_lines=st.sampled_from([None, 0, 1, 40]), dedup_documents=st.booleans(),
       min_chars=st.integers(0, 3), letters=st.sampled_from([0.0, 0.4]),
       piece_chars=st.integers(1, 12))
def test_cleaning_in_pieces_equals_cleaning_whole_documents(documents, dedup_lines,
                                                            dedup_documents, min_chars,
                                                            letters, piece_chars):
    options = CleaningOptions(dedup_lines_min_chars=dedup_lines, dedup_documents=dedup_documents,
                              min_chars=min_chars, min_letter_fraction=letters)
    whole, whole_report = clean_documents(documents, options, piece_chars=10**9)
    pieces, pieces_report = clean_documents(documents, options, piece_chars=piece_chars)
    assert pieces == whole
    assert pieces_report.to_dict() == whole_report.to_dict()


def test_cleaning_across_pieces_examples():
    text = f"\n\nx\n\n\n\n{LONG}\ny\n\n\n{LONG}\n\n\n\nz\n\n"
    for size in (1, 2, 3, 5, 8):
        docs, report = clean_documents([text], piece_chars=size)
        assert docs == [f"x\n\n{LONG}\ny\n\nz"], size
        assert report.removed["duplicate lines removed"] == 1
    # a duplicate document is dropped even when its line dedup ran first, piece by piece
    docs, report = clean_documents([f"{LONG}\nq", "p", f"{LONG}\nq"], piece_chars=3)
    assert docs == [f"{LONG}\nq", "p"]
    assert report.removed == {"duplicate documents removed": 1}


def _corpus(tmp_path, copies=30) -> Path:
    lines = [f"{i % 7} line {i}: {'long ' * (i % 9)}text \u00e9\u0301" for i in range(40)]
    text = "\r\n".join(lines * copies) + "\n\n\n" + LONG + "\n" + LONG + "\n"
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _arrays(ds: Dataset):
    return np.array(ds.train), np.array(ds.val)


@pytest.mark.parametrize("tokenizer,vocab_size", [("char", None), ("bpe", 300)])
def test_prepare_streams_a_file_in_pieces_like_its_text(tmp_path, monkeypatch, tokenizer,
                                                        vocab_size):
    path = _corpus(tmp_path)
    text = path.read_bytes().decode("utf-8")
    whole = prepare(tmp_path / "whole", [text], ["t"], tokenizer=tokenizer,
                    vocab_size=vocab_size, log=lambda message: None)
    monkeypatch.setattr(dataset_module, "PIECE_BYTES", 97)  # cuts everywhere, mid-line too
    streamed = prepare(tmp_path / "streamed", [path], ["t"], tokenizer=tokenizer,
                       vocab_size=vocab_size, log=lambda message: None)
    for a, b in zip(_arrays(whole), _arrays(streamed)):
        np.testing.assert_array_equal(a, b)
    assert whole.meta["cleaning_report"] == streamed.meta["cleaning_report"]
    assert whole.tokenizer.to_dict() == streamed.tokenizer.to_dict()
    ids = np.concatenate(_arrays(streamed))
    assert streamed.tokenizer.decode(ids.tolist()) == "\n\n".join(
        clean_documents([text])[0])


def test_prepare_on_workers_equals_one_process(tmp_path, monkeypatch):
    paths = []
    for name, copies in (("a", 20), ("b", 5)):
        (tmp_path / name).mkdir()
        paths.append(_corpus(tmp_path / name, copies))
    one = prepare(tmp_path / "one", paths, ["a", "b"], workers=1, log=lambda message: None)
    monkeypatch.setattr(dataset_module, "PIECE_BYTES", 500)
    monkeypatch.setattr(dataset_module, "ENCODE_PIECE_CHARS", 300)
    monkeypatch.setattr(dataset_module, "PARALLEL_MIN_BYTES", 0)
    messages = []
    two = prepare(tmp_path / "two", paths, ["a", "b"], workers=2, log=messages.append)
    assert "2 workers" in messages[-1] and "MB/s" in messages[-1]
    for a, b in zip(_arrays(one), _arrays(two)):
        np.testing.assert_array_equal(a, b)
    assert one.meta["cleaning_report"] == two.meta["cleaning_report"]


def test_prepare_shows_progress_with_the_speed(tmp_path, capsys):
    prepare(tmp_path / "d", [_corpus(tmp_path)], ["c"], progress=True, log=print)
    err = capsys.readouterr().err
    assert "prepare: cleaning" in err and "prepare: tokenizing" in err and "MB/s" in err


def test_a_binary_file_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    path = tmp_path / "late.bin"
    path.write_bytes(b"text\n" * 1000 + b"\x00\x01" + b"more\n")
    monkeypatch.setattr(dataset_module, "PIECE_BYTES", 64)
    with pytest.raises(ValueError, match="late.bin is a binary file"):
        prepare(tmp_path / "d", [path], ["late.bin"], log=lambda message: None)
    assert not (tmp_path / "d").exists()


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes("\u4e2d\u6587".encode("utf-16"))  # no NUL byte in it
    with pytest.raises(ValueError, match="wide.txt is UTF-16 or UTF-32 text"):
        prepare(tmp_path / "d", [path], ["wide.txt"], log=lambda message: None)


def test_a_file_with_lone_cr_line_ends_is_read_in_pieces(tmp_path, monkeypatch):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"".join(b"line %d\r" % (i % 50) + b"\r\n" * (i % 3 == 0)
                              for i in range(300)))
    monkeypatch.setattr(dataset_module, "PIECE_BYTES", 64)
    text = path.read_bytes().decode()
    pieces = [piece for piece, _ in dataset_module.file_pieces(path)]
    assert "".join(pieces) == text and max(map(len, pieces)) < 200
    ds = prepare(tmp_path / "d", [path], ["mac.txt"], val_fraction=0, log=lambda message: None)
    assert ds.tokenizer.decode(np.array(ds.train).tolist()) == clean_documents([text])[0][0]


def test_cli_prepare_takes_workers_and_names_a_bad_count(tmp_path, capsys):
    path = _corpus(tmp_path)
    out = tmp_path / "d"
    assert cli.main(["prepare", "--data", str(path), "--out", str(out), "--workers", "1",
                     "--no-progress"]) == 0
    assert "1 worker" in capsys.readouterr().out
    assert cli.main(["prepare", "--data", str(path), "--out", str(tmp_path / "e"),
                     "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_token_files_are_copied_a_block_at_a_time(tmp_path, monkeypatch):
    raw = tmp_path / "ids.raw"
    ids = np.arange(1000, dtype=np.uint16) * 7
    raw.write_bytes(ids.tobytes())
    monkeypatch.setattr("gpt.data.token_cache.BLOCK_BYTES", 64)
    path = save_token_range(tmp_path / "part.npy", raw, 100, 850, vocab_size=7000)
    np.testing.assert_array_equal(load_tokens(path), ids[100:950])
    assert max_token(path) == int(ids[949])
    assert max_token(save_token_range(tmp_path / "none.npy", raw, 0, 0, 7000)) == -1
    with pytest.raises(ValueError, match="ends before"):
        save_token_range(tmp_path / "over.npy", raw, 900, 200, vocab_size=7000)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=20), max_size=12))
def test_seen_hashes_is_a_set(batches):
    seen, reference = SeenHashes(), set()
    for batch in batches:
        hashes = np.array(batch, dtype=np.uint64)
        assert seen.contains(hashes).tolist() == [h in reference for h in batch]
        new = sorted(set(batch) - reference)
        seen.add(np.array(new, dtype=np.uint64))
        reference |= set(new)
        assert len(seen) == len(reference)


def test_ordered_map_keeps_order_reads_ahead_a_little_and_raises(monkeypatch):
    pulled = []

    def items():
        for i in range(40):
            pulled.append(i)
            yield i

    results = ordered_map(abs, items(), 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    assert len(pulled) <= 3 + 2 * 2  # in flight: two per worker
    assert list(results) == list(range(3, 40))
    with pytest.raises(ValueError, match="math domain"):
        list(ordered_map(_log, [1.0, 2.0, -1.0, 3.0], 2))
    assert list(ordered_map(abs, [-5], 2)) == [5]  # one item: no processes


def _log(x):
    import math

    return math.log(x)


def test_char_tokenizer_encodes_arrays_in_any_alphabet_order():
    tok = bpe.CharTokenizer(["z", "a", "\U0001f600", "\n"])
    assert tok.encode("a\U0001f600\nz") == [1, 2, 3, 0]
    assert tok.encode_array("za").dtype == np.uint8
    with pytest.raises(ValueError, match="'q' is not in this tokenizer's alphabet"):
        tok.encode("zaq")


def test_dataset_json_of_a_streamed_prepare_records_the_inputs(tmp_path):
    path = _corpus(tmp_path)
    ds = prepare(tmp_path / "d", [path], [str(path)], log=lambda message: None)
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert meta["sources"] == [str(path)]
    assert meta["train_tokens"] + meta["val_tokens"] == len(ds.train) + len(ds.val)
