"""The command line, run in-process: each command with tiny settings, the artifacts a run
folder holds, and the errors for bad flags and bad data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gpt import cli
from gpt.runlog import read_metrics

WORDS = ("the cat sat on a mat while a dog ran to the park and back again; "
         "then it rained on the town, so everyone went home for tea.\n")
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--warmup", "2", "--eval-batches", "2", "--log-interval", "2",
        "--max-new-tokens", "20", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    lines = [f"{i}: {WORDS}" for i in range(120)]  # numbered, so no line is a duplicate
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    code = cli.main(["train", "--data", str(corpus), "--out", str(out), "--name", "tiny",
                     "--steps", "6", "--eval-interval", "3", "--checkpoint-interval", "3",
                     *TINY])
    assert code == 0
    return out / "tiny"


def test_train_writes_every_artifact(trained_run, capsys):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "tokenizer.json", "model.safetensors", "metrics.jsonl",
            "samples.txt", "data"} <= names
    assert len([n for n in names if re.fullmatch(r"training_state\.\w+\.safetensors", n)]) == 1
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"]["n_layer"] == 1 and config["train"]["steps"] == 6
    records = read_metrics(trained_run / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert all("tokens_per_s" in r and "mfu" in r for r in records if r["step"] in (2, 4, 6)
               and "loss" in r)
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the plot is optional
        assert not (trained_run / "loss.png").exists()
    else:
        assert (trained_run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (trained_run / "samples.txt").read_text().startswith("--- step 6")
    files = json.loads((trained_run / "data" / "dataset.json").read_text())["files"]
    assert (trained_run / "data" / files["train"]).exists()


def test_generate_streams_reproducibly(trained_run, capsys):
    args = ["sample", str(trained_run), "--prompt", "the ", "--max-new-tokens", "15",
            "--seed", "3", "--top-k", "5"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert cli.main(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("the ") and len(first) == len("the ") + 15 + 1  # + newline


def test_eval_reports_loss_and_perplexity(trained_run, corpus, capsys):
    assert cli.main(["eval", str(trained_run), "--data", str(corpus)]) == 0
    out = capsys.readouterr().out
    loss, perplexity = map(float, re.search(r"loss ([\d.]+) nats/token, perplexity ([\d.]+)",
                                            out).groups())
    assert perplexity == pytest.approx(np.exp(loss), rel=1e-3)
    assert cli.main(["eval", str(trained_run)]) == 0
    assert "the validation split" in capsys.readouterr().out


def test_resume_of_a_finished_run_and_changed_flags(trained_run, capsys):
    assert cli.main(["train", "--resume", str(trained_run), "--no-progress",
                     "--max-new-tokens", "5"]) == 0
    steps = [r["step"] for r in read_metrics(trained_run / "metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # nothing left to train, nothing logged twice
    assert cli.main(["train", "--resume", str(trained_run), "--lr", "0.1"]) == 2
    assert "--lr cannot change" in capsys.readouterr().err


def test_prepare_then_train_on_the_prepared_folder(corpus, tmp_path, capsys):
    data = tmp_path / "ds"
    args = ["prepare", "--data", str(corpus), "--out", str(data), "--tokenizer", "bpe",
            "--vocab-size", "280", "--val-fraction", "0.2"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "cleaning:" in out and "uint16, vocabulary 280" in out
    assert cli.main(args) == 0
    assert "not tokenizing again" in capsys.readouterr().out
    meta = json.loads((data / "dataset.json").read_text())
    assert meta["tokenizer"] == "bpe" and meta["val_tokens"] > 0
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path), "--name", "r",
                     "--steps", "3", "--eval-interval", "0", *TINY]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"]["vocab_size"] == 280 and config["data"] == str(data)
    assert not (tmp_path / "r" / "data").exists()  # the prepared folder is used as is


def test_prepare_cleaning_flags(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("caf\u00e9 au lait\n" * 3, encoding="utf-8")
    assert cli.main(["prepare", "--data", str(text), "--out", str(tmp_path / "d"),
                     "--ascii-only", "--no-dedup-documents"]) == 0
    out = capsys.readouterr().out
    assert "non-ASCII characters removed" in out
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["cleaning"]["ascii_only"]


def test_plan(corpus, capsys):
    assert cli.main(["plan", "--tokens", "1e6", "--mfu", "0.5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"compute-optimal parameters \(20 tokens each\)\s+50,000", out)
    assert re.search(r"training FLOPs \(6 x params x tokens\)\s+3e\+11", out)
    assert cli.main(["plan", "--data", str(corpus)]) == 0
    tokens = len(corpus.read_text().strip())  # char tokens of the cleaned text
    assert re.search(rf"training tokens\s+{tokens:,}\n", capsys.readouterr().out)


def test_default_train_flags_parse():
    args = cli.build_parser().parse_args(["train"])
    assert args.data is None and args.tokenizer == "char" and args.resume is None
    assert cli.given(args, cli.TrainConfig) == {} and cli.given(args, cli.GPTConfig) == {}


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["train", "--n-layer", "two"], ["train", "--batching", "x"],
                                  ["sample"], ["frobnicate"]])
def test_bad_flags_exit_with_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_data_errors(corpus, tmp_path, capsys):
    def error(*argv):
        assert cli.main(["train", "--out", str(tmp_path), *TINY, *argv]) == 2
        return capsys.readouterr().err

    assert "missing.txt is not found" in error("--data", str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    assert "no text left after cleaning" in error("--data", str(empty), "--name", "e")
    small = tmp_path / "small.txt"
    small.write_text("a few words", encoding="utf-8")
    assert "block size 16 is larger than the data" in error(
        "--data", str(small), "--name", "s", "--val-fraction", "0")
    assert "the validation split has 1 tokens" in error("--data", str(small), "--name", "v")
    assert "n_embd (16) must be divisible by n_head (3)" in error(
        "--data", str(corpus), "--n-head", "3")
    assert "needs --vocab-size" in error("--data", str(corpus), "--tokenizer", "bpe",
                                         "--name", "b")
    assert "--warmup (2) must be smaller than --steps (2)" in error(
        "--data", str(corpus), "--name", "w", "--steps", "2")


def test_builtin_corpus_missing_asks_for_data(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(__import__("sys").modules, "pydoc_data.topics", None)
    assert cli.main(["prepare", "--out", str(tmp_path / "d")]) == 2
    assert "pass your own text with --data FILE" in capsys.readouterr().err


def test_unknown_device_and_existing_run(trained_run, corpus, tmp_path, capsys):
    assert cli.main(["sample", str(trained_run), "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(tmp_path), "--device", "tpu", *TINY]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before a run folder was made
    assert cli.main(["train", "--data", str(corpus), "--out", str(trained_run.parent),
                     "--name", trained_run.name, *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli.main(["sample", str(trained_run.parent / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_eval_text_the_tokenizer_cannot_encode(trained_run, tmp_path, capsys):
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("Жж", encoding="utf-8")
    assert cli.main(["eval", str(trained_run), "--data", str(foreign)]) == 2
    assert "the run's tokenizer cannot encode this text" in capsys.readouterr().err
