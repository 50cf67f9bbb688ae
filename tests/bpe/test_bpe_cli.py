"""The command line: train, encode, decode, stats, and its errors."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import regex

import bpe
from bpe.cli import main
from bpe.corpus import builtin_corpus
from bpe.patterns import unicode_version

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "corpus.txt"
    path.write_text(builtin_corpus()[:40_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer_file(corpus_file):
    path = corpus_file.parent / "tok.json"
    assert main([
        "train", str(corpus_file), "--vocab-size", "500", "--pattern", "cl100k",
        "--special-token", "<|endoftext|>", "--quiet", "-o", str(path),
    ]) == 0
    return path


def test_train_writes_a_loadable_tokenizer(tokenizer_file):
    tokenizer = bpe.load(tokenizer_file)
    assert tokenizer.vocab_size == 500
    assert tokenizer.pattern.name == "cl100k"
    assert tokenizer.eot == 499


def test_train_reports_progress(corpus_file, tmp_path, capsys):
    assert main(["train", str(corpus_file), "--vocab-size", "300", "-o",
                 str(tmp_path / "t.json")]) == 0
    err = capsys.readouterr().err
    assert "[bpe] merge: 44/44 merges" in err and "saved to" in err


def test_encode_then_decode_files(tokenizer_file, corpus_file, tmp_path):
    ids_path = tmp_path / "ids.txt"
    out_path = tmp_path / "out.txt"
    assert main(["encode", "-t", str(tokenizer_file), str(corpus_file), "-o", str(ids_path)]) == 0
    ids = [int(field) for field in ids_path.read_text().split()]
    assert ids == bpe.load(tokenizer_file).encode(corpus_file.read_text(encoding="utf-8"))
    assert main(["decode", "-t", str(tokenizer_file), str(ids_path), "-o", str(out_path)]) == 0
    assert out_path.read_bytes() == corpus_file.read_bytes()


def test_encode_and_decode_through_stdin_and_stdout(tokenizer_file, monkeypatch, capsysbinary):
    text = "Standard input 中文 😀\r\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["encode", "-t", str(tokenizer_file), "--format", "json"]) == 0
    ids = json.loads(capsysbinary.readouterr().out)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(ids).encode())))
    assert main(["decode", "-t", str(tokenizer_file)]) == 0
    assert capsysbinary.readouterr().out == text.encode()


def test_special_tokens_need_allowing(tokenizer_file, tmp_path, capsys):
    source = tmp_path / "special.txt"
    source.write_text("a<|endoftext|>b", encoding="utf-8")
    assert main(["encode", "-t", str(tokenizer_file), str(source)]) == 1
    assert "does not allow" in capsys.readouterr().err
    assert main(["encode", "-t", str(tokenizer_file), str(source), "--allowed-special",
                 "all"]) == 0
    assert "499" in capsys.readouterr().out.split()


def test_stats_shows_vocabulary_and_bytes_per_token(tokenizer_file, corpus_file, capsys):
    assert main(["stats", "-t", str(tokenizer_file), str(corpus_file), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "vocab size: 500" in out and "pattern: cl100k" in out
    assert "first merged tokens:" in out and "bytes/token" in out
    assert f"unicode: {unicode_version()} (the tables of regex {regex.__version__}" in out


def test_version_names_the_unicode_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("bpe (minigrad ")
    assert f"Unicode {unicode_version()} (the tables of regex {regex.__version__}" in out


def test_char_tokenizer_files_work_too(tmp_path, capsys):
    path = tmp_path / "char.json"
    bpe.CharTokenizer.from_text("abc ").save(path)
    source = tmp_path / "in.txt"
    source.write_text("cab a", encoding="utf-8")
    assert main(["encode", "-t", str(path), str(source)]) == 0
    assert capsys.readouterr().out.split() == ["3", "1", "2", "0", "1"]
    assert main(["stats", "-t", str(path)]) == 0
    assert "alphabet: ' abc'" in capsys.readouterr().out


def test_python_dash_m_bpe_runs(tokenizer_file):
    result = subprocess.run(
        [sys.executable, "-m", "bpe", "stats", "-t", str(tokenizer_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "vocab size: 500" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.txt", "--vocab-size", "300", "-o", "x.json"], "not found"),
        (["encode", "-t", "missing.json"], "No such file"),
        (["decode", "-t", "{tok}", "{corpus}"], "token ids must be integers"),
        (["train", "{corpus}", "--vocab-size", "100", "-o", "x.json"], "vocab_size must be"),
        (["train", "{corpus}", "--vocab-size", "300", "--pattern", "(", "-o", "x.json"],
         "does not compile"),
        (["train", "{corpus}", "--vocab-size", "300", "--format", "sentencepiece",
          "--special-token", "<|x|>", "-o", "x.model"],
         "--special-token is for --format bpe, not sentencepiece"),
        (["train", "{corpus}", "--vocab-size", "300", "--no-byte-fallback", "-o", "x.json"],
         "--no-byte-fallback is for --format sentencepiece, not bpe"),
        (["train", "{corpus}", "--vocab-size", "300", "--format", "sentencepiece", "-o",
          "x.model"], "vocab_size 300 is too small for the 259 special and byte pieces"),
        (["convert", "{tok}", "--format", "sentencepiece", "-o", "x.model"],
         "a Tokenizer cannot be written as a SentencePiece model with the same ids"),
    ],
)
def test_errors_exit_with_status_1_and_a_message(argv, message, tokenizer_file, corpus_file,
                                                 capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [arg.format(tok=tokenizer_file, corpus=corpus_file) for arg in argv]
    assert main(argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [["encode"], ["decode"], ["stats"], ["encode", "--char"]])
def test_an_input_that_is_not_utf8_is_named(command, tokenizer_file, tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 12\n".encode("latin-1"))
    tokenizer = tokenizer_file
    if command[1:] == ["--char"]:
        tokenizer = tmp_path / "char.json"
        bpe.CharTokenizer.from_text("caf 12\n").save(tokenizer)
    assert main([command[0], "-t", str(tokenizer), str(bad)]) == 1
    assert f"{str(bad)!r} is not UTF-8 text (invalid continuation byte: b'\\xe9 12" in (
        capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [[], ["train", "f.txt"], ["train", "f.txt", "--vocab-size", "big", "-o", "x"],
     ["decode", "-t", "t.json", "--errors", "loud"], ["bogus"]],
)
def test_bad_options_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: bpe" in capsys.readouterr().err


# -- other formats: --from, convert --format ----------------------------------------------


def encoded_with(argv, source, capsys):
    assert main(["encode", *argv, str(source)]) == 0, capsys.readouterr().err
    return [int(field) for field in capsys.readouterr().out.split()]


@pytest.mark.parametrize("target", ["tiktoken", "huggingface", "bpe"])
def test_convert_then_encode_from_the_converted_file(target, tokenizer_file, corpus_file,
                                                     tmp_path, capsys):
    converted = tmp_path / f"converted.{target}"
    assert main(["convert", str(tokenizer_file), "--format", target, "-o", str(converted)]) == 0
    options = {"tiktoken": ["--from", "tiktoken", "--pattern", "cl100k"],
               "huggingface": ["--from", "huggingface"], "bpe": []}[target]
    expected = bpe.load(tokenizer_file).encode_ordinary(corpus_file.read_text(encoding="utf-8"))
    assert encoded_with(["-t", str(converted), *options], corpus_file, capsys) == expected


def test_gpt2_folder_and_its_errors(tokenizer_file, corpus_file, tmp_path, capsys):
    from tests.bpe.test_bpe_files import write_gpt2_files

    tokenizer = bpe.load(tokenizer_file)
    write_gpt2_files(tokenizer, tmp_path, ["<|endoftext|>"])
    ids = encoded_with(["-t", str(tmp_path), "--from", "gpt2"], corpus_file, capsys)
    loaded = bpe.Tokenizer.from_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    assert ids == loaded.encode_ordinary(corpus_file.read_text(encoding="utf-8"))
    assert main(["stats", "-t", str(tmp_path / "encoder.json"), "--from", "gpt2"]) == 1
    assert "wants a folder with encoder.json and vocab.bpe" in capsys.readouterr().err


def test_sentencepiece_models_encode_decode_and_refuse_conversion(tmp_path, corpus_file, capsys):
    spm = pytest.importorskip("sentencepiece", reason="the model is trained by sentencepiece")
    spm.SentencePieceTrainer.train(input=str(corpus_file), model_prefix=str(tmp_path / "m"),
                                   vocab_size=300, model_type="bpe", minloglevel=2,
                                   normalization_rule_name="identity")
    model = tmp_path / "m.model"
    options = ["-t", str(model), "--from", "sentencepiece"]
    ids = encoded_with(options, corpus_file, capsys)
    theirs = spm.SentencePieceProcessor(model_file=str(model))
    assert ids == theirs.encode(corpus_file.read_text(encoding="utf-8"))
    assert main(["stats", *options]) == 0
    assert "kind: SentencePieceTokenizer" in capsys.readouterr().out
    assert main(["convert", str(model), "--from", "sentencepiece", "--format", "tiktoken",
                 "-o", str(tmp_path / "x.tiktoken")]) == 1
    assert "only byte-level BPE tokenizers convert" in capsys.readouterr().err


def test_train_writes_sentencepiece_models_that_convert_writes_back(tmp_path, corpus_file,
                                                                   capsys):
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece checks the model we write")
    model = tmp_path / "m.model"
    assert main(["train", str(corpus_file), "--vocab-size", "500", "--format", "sentencepiece",
                 "--quiet", "-o", str(model)]) == 0
    theirs = spm.SentencePieceProcessor(model_file=str(model))
    assert theirs.get_piece_size() == 500
    options = ["-t", str(model), "--from", "sentencepiece"]
    text = corpus_file.read_text(encoding="utf-8") + " ∂ 🚀"
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    ids = encoded_with(options, tmp_path / "text.txt", capsys)
    assert ids == theirs.encode(text)
    assert len(ids) < len(text) / 1.5
    again = tmp_path / "again.model"
    assert main(["convert", str(model), "--from", "sentencepiece", "--format", "sentencepiece",
                 "-o", str(again)]) == 0
    assert again.read_bytes() == model.read_bytes()


@pytest.mark.parametrize(
    ("source", "content", "extra", "message"),
    [
        ("tiktoken", b"YQ== 0\n", [], "holds no split pattern: give --pattern"),
        ("tiktoken", b"not base64 at all\n", ["--pattern", "gpt2"], "line 1 is not"),
        ("huggingface", b"{broken", [], "is not a JSON tokenizer file"),
        ("huggingface", b'{"model": {"type": "Unigram"}}', [], "model type is 'Unigram'"),
        ("sentencepiece", b"\x0a\xff\xff", [], "not a supported SentencePiece BPE model"),
        ("bpe", b"{}", ["--pattern", "gpt2"], "--pattern is for --from tiktoken"),
    ],
)
def test_malformed_files_in_every_format_are_clear_errors(source, content, extra, message,
                                                          tmp_path, capsys):
    path = tmp_path / "tokenizer.file"
    path.write_bytes(content)
    assert main(["stats", "-t", str(path), "--from", source, *extra]) == 1
    assert message in capsys.readouterr().err
