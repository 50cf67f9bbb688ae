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
