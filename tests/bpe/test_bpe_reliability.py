"""Bad tokenizer inputs get one clear error naming the file (issue 12): a directory given
as training text, undecodable text, a truncated gzip rank file, an unknown pattern name."""

from __future__ import annotations

import json

import pytest

import bpe
from bpe.cli import main


@pytest.fixture(scope="module")
def tokenizer():
    return bpe.Tokenizer.train(["hello hello world, hello there"], vocab_size=264)


def test_a_directory_is_named_as_one(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--vocab-size", "260", "-o", str(tmp_path / "t.json"),
                 "--quiet"]) == 1
    assert f"training file {str(tmp_path)!r} is a directory" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_undecodable_text_names_the_file(tmp_path, capsys):
    binary = tmp_path / "program"
    binary.write_bytes(b"\x7fELF\x02\xff\xfe" * 10)
    assert main(["train", str(binary), "--vocab-size", "260", "-o", str(tmp_path / "t.json"),
                 "--quiet"]) == 1
    assert f"{str(binary)!r} is not UTF-8 text" in capsys.readouterr().err


def test_a_truncated_gzip_rank_file_is_a_clear_error(tokenizer, tmp_path):
    path = tmp_path / "ranks.tiktoken.gz"
    tokenizer.save_tiktoken(path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="is truncated or corrupt gzip data"):
        bpe.Tokenizer.from_tiktoken(path, pattern="gpt2")
    with pytest.raises(ValueError, match="is gzip-compressed, not a JSON tokenizer file"):
        bpe.load(path)


def test_an_unknown_pattern_name_is_refused_at_load(tokenizer, tmp_path):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["pattern"]["name"] = "gpt5"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=r"tok.json.*unknown pattern name 'gpt5'"):
        bpe.load(path)


def test_encoding_a_file_streams_the_ids_of_the_whole_text(tokenizer, tmp_path, monkeypatch,
                                                           capsys):
    from bpe import encoding, training

    monkeypatch.setattr(training, "PIECE_CHARS", 1024)  # pieces, batches from a small file
    monkeypatch.setattr(encoding, "PARALLEL_MIN_CHARS", 1)  # and worker processes for them
    text = "".join(f"line {i}: hello  world,\nthere\n\n  indented {i}\n" for i in range(200))
    source = tmp_path / "in.txt"
    source.write_text(text, encoding="utf-8")
    expected = tokenizer.encode(text)
    tok = tmp_path / "tok.json"
    tokenizer.save(tok)
    for fmt, parse in (("text", lambda s: list(map(int, s.split()))), ("json", json.loads)):
        out = tmp_path / f"ids.{fmt}"
        assert main(["encode", "-t", str(tok), str(source), "-o", str(out), "--format",
                     fmt, "--workers", "2"]) == 0
        assert parse(out.read_text()) == expected
        assert "MB/s, 2 workers)" in capsys.readouterr().err
    assert json.loads((tmp_path / "ids.json").read_text()) == expected
    assert (tmp_path / "ids.text").read_text() == " ".join(map(str, expected)) + "\n"


def test_encoding_stdin_streams_it_piece_by_piece(tokenizer, tmp_path, monkeypatch, capsys):
    import io
    import sys

    from bpe import cli, training

    monkeypatch.setattr(training, "PIECE_CHARS", 512)
    text = "".join(f"row {i}:\r\n  caf\u00e9 <|endoftext|> {i * 7}\n\n" for i in range(3000))
    reads = []

    class Stdin(io.BytesIO):  # records the reads: many of a block, never one of everything
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

        def read1(self, size=-1):
            reads.append(size)
            return super().read1(size)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(Stdin(text.encode("utf-8"))))
    tok = tmp_path / "tok.json"
    tokenizer.save(tok)
    out = tmp_path / "ids.txt"
    assert cli.main(["encode", "-t", str(tok), "-o", str(out), "--workers", "1"]) == 0
    assert list(map(int, out.read_text().split())) == tokenizer.encode(text)
    assert len(reads) > 5 and all(0 <= size < len(text) // 2 for size in reads)
    assert "encoded stdin" in capsys.readouterr().err
